//go:build race

package layers

// raceEnabled reports a -race build, whose sync.Pool drops items at random
// and whose instrumentation allocates: allocation counts mean nothing there.
const raceEnabled = true
