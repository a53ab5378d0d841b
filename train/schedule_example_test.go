package train_test

import (
	"fmt"
	"log"
	"strings"

	"github.com/gozoo/gozoo/train"
)

func ExampleStepLR() {
	s, err := train.StepLR(0.1, 3, 0.5)
	if err != nil {
		log.Fatal(err)
	}
	for epoch := 0; epoch < 8; epoch++ {
		fmt.Printf("%g ", s.LR(epoch))
	}
	fmt.Println()
	// Output: 0.1 0.1 0.1 0.05 0.05 0.05 0.025 0.025
}

func ExampleParseSchedule() {
	cfg := train.DefaultScheduleConfig(0.1)
	cfg.TMax = 4
	cfg.WarmupSteps = 2
	cfg.WarmupStartFactor = 0.5
	s, err := train.ParseSchedule("cosine", cfg)
	if err != nil {
		log.Fatal(err)
	}
	var lrs []string
	for epoch := 0; epoch < 7; epoch++ {
		lrs = append(lrs, fmt.Sprintf("%.4f", s.LR(epoch)))
	}
	fmt.Println(strings.Join(lrs, " "))
	_, err = train.ParseSchedule("linear", cfg)
	fmt.Println(err)
	// Output:
	// 0.0500 0.0750 0.1000 0.0854 0.0500 0.0146 0.0000
	// unknown schedule "linear": want one of constant, cosine, multistep, none, onecycle, plateau, step
}

func ExampleReduceLROnPlateau() {
	cfg := train.DefaultPlateauConfig()
	cfg.Patience = 1
	s, err := train.NewReduceLROnPlateau(0.1, cfg)
	if err != nil {
		log.Fatal(err)
	}
	for _, valLoss := range []float64{1.0, 0.8, 0.8, 0.8, 0.7} {
		fmt.Printf("%.3g ", s.Step(valLoss))
	}
	fmt.Println()
	// Output: 0.1 0.1 0.1 0.01 0.01
}
