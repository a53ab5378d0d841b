package train

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gozoo/gozoo/safetensors"
	"gorgonia.org/tensor"
)

// CheckpointVersion is the version of the checkpoint format written here.
const CheckpointVersion = 1

// A checkpoint is a folder holding
//
//	model.safetensors      weights and batch-norm buffers, torchvision's names
//	optimizer.safetensors  the optimizer's buffers ("<param>.momentum_buffer", …)
//	state.json             everything else: a Checkpoint
//
// inside a run folder that also holds the files "latest" and "best", each
// naming one checkpoint folder.

// Checkpoint is the JSON part of a checkpoint.
type Checkpoint struct {
	Version   int               `json:"version"`
	Time      string            `json:"time"`
	Config    json.RawMessage   `json:"config"` // the effective configuration of the run
	Progress  Progress          `json:"progress"`
	LR        float64           `json:"lr"`
	Optimizer OptimizerState    `json:"optimizer"`
	Plateau   *PlateauState     `json:"plateau,omitempty"`
	RandState []byte            `json:"rand_state"` // the net's dropout stream
	Test      *Eval             `json:"test,omitempty"`
	ValAcc    float64           `json:"val_acc"` // Test.Top1, under the name PyTorch tutorials use
	Model     map[string]string `json:"model"`   // the weights file's metadata
	// SHA256 of the two safetensors files, to detect corruption.
	Files map[string]string `json:"files"`
}

// Checkpointer saves the trainer's state into Dir after every epoch
// (an EpochHook), keeping the last Keep checkpoints and the best one.
type Checkpointer struct {
	Dir    string
	Keep   int // checkpoints kept besides the best; 0 means 3
	Config any // the effective configuration, saved in every checkpoint
	// LastTest is the last evaluation, saved as val_acc.
	LastTest *Eval
}

// AfterEpoch saves a checkpoint.
func (c *Checkpointer) AfterEpoch(t *Trainer, e EpochInfo) error {
	if e.Test != nil {
		c.LastTest = e.Test
	}
	_, err := c.Save(t, e.Best)
	return err
}

// Save writes a checkpoint of t now (also mid-epoch, as on Ctrl-C) and
// returns its folder. Every file is written to a temporary folder, synced
// and renamed into place, then "latest" (and "best" when best) is replaced
// atomically: a crash at any moment leaves the previous checkpoint intact.
func (c *Checkpointer) Save(t *Trainer, best bool) (string, error) {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	cfg, err := json.Marshal(c.Config)
	if err != nil {
		return "", fmt.Errorf("train: checkpoint: config: %w", err)
	}
	opt, err := t.Opt.State()
	if err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	rs, err := t.Net.RandState()
	if err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	weights, meta := t.Net.State()
	ck := Checkpoint{
		Version: CheckpointVersion, Time: time.Now().UTC().Format(time.RFC3339), Config: cfg,
		Progress: t.Progress, LR: t.LR(), Optimizer: opt, RandState: rs, Test: c.LastTest, Model: meta,
		Files: map[string]string{},
	}
	if c.LastTest != nil {
		ck.ValAcc = c.LastTest.Top1
	}
	if p, ok := t.Sched.(*ReduceLROnPlateau); ok {
		st := p.State()
		ck.Plateau = &st
	}
	optTensors := make(map[string]safetensors.Tensor, len(opt.Tensors))
	for k, v := range opt.Tensors {
		if optTensors[k], err = fromDense(v); err != nil {
			return "", fmt.Errorf("train: checkpoint: optimizer buffer %s: %w", k, err)
		}
	}

	tmp, err := os.MkdirTemp(c.Dir, ".tmp-ckpt-")
	if err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	defer os.RemoveAll(tmp)
	for name, tensors := range map[string]map[string]safetensors.Tensor{"model.safetensors": weights, "optimizer.safetensors": optTensors} {
		path := filepath.Join(tmp, name)
		if err := safetensors.WriteFile(path, tensors, meta); err != nil {
			return "", fmt.Errorf("train: checkpoint: %w", err)
		}
		sum, err := fileSHA256(path)
		if err != nil {
			return "", err
		}
		ck.Files[name] = sum
	}
	js, err := json.MarshalIndent(ck, "", "  ")
	if err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	if err := writeFileSync(filepath.Join(tmp, "state.json"), js); err != nil {
		return "", err
	}
	name := fmt.Sprintf("ckpt-e%04d-s%07d", t.Progress.Epoch, t.Progress.Step)
	final := filepath.Join(c.Dir, name)
	if err := os.RemoveAll(final); err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	syncDir(c.Dir)
	if err := writeAtomic(filepath.Join(c.Dir, "latest"), []byte(name+"\n")); err != nil {
		return "", err
	}
	if best {
		if err := writeAtomic(filepath.Join(c.Dir, "best"), []byte(name+"\n")); err != nil {
			return "", err
		}
	}
	return final, c.prune()
}

// prune removes all but the newest Keep checkpoints, never the best or
// the latest.
func (c *Checkpointer) prune() error {
	keep := c.Keep
	if keep <= 0 {
		keep = 3
	}
	names, err := checkpointNames(c.Dir)
	if err != nil {
		return err
	}
	protect := map[string]bool{}
	for _, f := range []string{"latest", "best"} {
		if b, err := os.ReadFile(filepath.Join(c.Dir, f)); err == nil {
			protect[strings.TrimSpace(string(b))] = true
		}
	}
	for i, n := range names {
		if i < len(names)-keep && !protect[n] {
			if err := os.RemoveAll(filepath.Join(c.Dir, n)); err != nil {
				return fmt.Errorf("train: remove old checkpoint: %w", err)
			}
		}
	}
	return nil
}

// checkpointNames lists the checkpoint folders of a run, oldest first.
func checkpointNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "ckpt-") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// Loaded is a checkpoint read from disk and verified, not yet applied.
type Loaded struct {
	Dir        string
	Checkpoint Checkpoint
	Weights    map[string]safetensors.Tensor
	OptTensors map[string]*tensor.Dense
}

// ResolveCheckpoint returns the checkpoint folder path names: a checkpoint
// folder itself, or a run folder whose "latest" (or, with best, "best") file
// names one.
func ResolveCheckpoint(path string, best bool) (string, error) {
	if _, err := os.Stat(filepath.Join(path, "state.json")); err == nil {
		return path, nil
	}
	pointer := "latest"
	if best {
		pointer = "best"
	}
	b, err := os.ReadFile(filepath.Join(path, pointer))
	if err != nil {
		return "", fmt.Errorf("train: no checkpoint in %s: expected a state.json or a %q file (pass a run folder written by zoo train, or one of its ckpt-* folders)", path, pointer)
	}
	return filepath.Join(path, strings.TrimSpace(string(b))), nil
}

// LoadCheckpoint reads and verifies a checkpoint folder (or a run folder,
// through its "latest" file): the format version, the files' checksums and
// the safetensors files. Nothing is applied to any model; see Restore.
func LoadCheckpoint(path string) (*Loaded, error) {
	dir, err := ResolveCheckpoint(path, false)
	if err != nil {
		return nil, err
	}
	l, err := loadCheckpoint(dir)
	if err != nil {
		older := ""
		if names, e := checkpointNames(filepath.Dir(dir)); e == nil && len(names) > 1 {
			older = fmt.Sprintf("; other checkpoints of this run: %s (pass one with --resume DIR/NAME)", strings.Join(names, ", "))
		}
		return nil, fmt.Errorf("train: checkpoint %s is unusable: %w%s", dir, err, older)
	}
	return l, nil
}

func loadCheckpoint(dir string) (*Loaded, error) {
	js, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return nil, err
	}
	var ck Checkpoint
	if err := json.Unmarshal(js, &ck); err != nil {
		return nil, fmt.Errorf("state.json: %w", err)
	}
	if ck.Version != CheckpointVersion {
		return nil, fmt.Errorf("state.json: format version %d, this gozoo reads version %d", ck.Version, CheckpointVersion)
	}
	l := &Loaded{Dir: dir, Checkpoint: ck, OptTensors: map[string]*tensor.Dense{}}
	for _, name := range []string{"model.safetensors", "optimizer.safetensors"} {
		path := filepath.Join(dir, name)
		sum, err := fileSHA256(path)
		if err != nil {
			return nil, err
		}
		if want := ck.Files[name]; sum != want {
			return nil, fmt.Errorf("%s: checksum %s, state.json records %s: the file is corrupt or truncated", name, sum[:12], short(want))
		}
		f, err := safetensors.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if name == "model.safetensors" {
			l.Weights = f.Tensors
			continue
		}
		for k, v := range f.Tensors {
			d, err := toDense(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", name, k, err)
			}
			l.OptTensors[k] = d
		}
	}
	l.Checkpoint.Optimizer.Tensors = l.OptTensors
	return l, nil
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	if s == "" {
		return "nothing"
	}
	return s
}

// Restore applies a loaded checkpoint to t, whose Net, Opt and Sched must be
// built from the checkpoint's configuration. The optimizer and schedule
// state are checked before the net's weights are replaced (all or nothing),
// so a checkpoint that does not fit changes nothing.
func (t *Trainer) Restore(l *Loaded) error {
	ck := l.Checkpoint
	if err := t.Opt.LoadState(ck.Optimizer); err != nil {
		return fmt.Errorf("train: restore %s: %w", l.Dir, err)
	}
	if p, ok := t.Sched.(*ReduceLROnPlateau); ok {
		if ck.Plateau == nil {
			return fmt.Errorf("train: restore %s: the checkpoint has no plateau schedule state", l.Dir)
		}
		if err := p.LoadState(*ck.Plateau); err != nil {
			return fmt.Errorf("train: restore %s: %w", l.Dir, err)
		}
	}
	if err := t.Net.LoadState(l.Weights); err != nil {
		return fmt.Errorf("train: restore %s: %w", l.Dir, err)
	}
	if err := t.Net.SetRandState(ck.RandState); err != nil {
		return fmt.Errorf("train: restore %s: %w", l.Dir, err)
	}
	t.Progress = ck.Progress
	return nil
}

func fromDense(d *tensor.Dense) (safetensors.Tensor, error) {
	switch v := d.Data().(type) {
	case []float32:
		return safetensors.FromFloat32(d.Shape(), slices.Clone(v)), nil
	case []float64:
		return safetensors.FromFloat64(d.Shape(), slices.Clone(v)), nil
	}
	return safetensors.Tensor{}, fmt.Errorf("dtype %v: only float32 and float64 are saved", d.Dtype())
}

func toDense(t safetensors.Tensor) (*tensor.Dense, error) {
	switch t.DType {
	case safetensors.F64:
		v, err := t.Float64s()
		if err != nil {
			return nil, err
		}
		return tensor.New(tensor.WithShape(shapeOf(t)...), tensor.WithBacking(v)), nil
	default:
		v, err := t.Float32s()
		if err != nil {
			return nil, err
		}
		return tensor.New(tensor.WithShape(shapeOf(t)...), tensor.WithBacking(v)), nil
	}
}

func shapeOf(t safetensors.Tensor) []int {
	if len(t.Shape) == 0 {
		return []int{1}
	}
	return t.Shape
}

func fileSHA256(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), nil
}

// writeFileSync writes b to path and syncs it.
func writeFileSync(path string, b []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("train: write %s: %w", path, err)
	}
	return nil
}

// writeAtomic replaces path with b through a synced temporary file.
func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := writeFileSync(tmp, b); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

// syncDir makes a rename durable; errors are ignored (not every file system
// can sync a directory).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
