package train

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"
)

// Resources is what the process used of the machine over an interval:
// figures of the Go runtime everywhere, and CPU time and resident memory
// where /proc exists (Linux; Proc says whether they were measured).
type Resources struct {
	Seconds float64 // wall time of the interval
	// CPUPercent is the process's CPU time (user + system) over the wall
	// time, ×100: 200 means two cores kept busy.
	CPUPercent   float64
	RSS, PeakRSS int64         // bytes at the end of the interval; PeakRSS since the process started (VmRSS, VmHWM)
	Proc         bool          // CPUPercent, RSS and PeakRSS were measured
	HeapInuse    uint64        // bytes of Go heap in use at the end (runtime.MemStats.HeapInuse)
	GCPause      time.Duration // total stop-the-world GC pause during the interval
	NumGC        uint32        // garbage collections during the interval
}

// Monitor measures Resources per epoch and between step records, for the
// hooks that log them. Epoch and Step return the same figures to every
// caller for the same epoch or step, so several hooks can read them in any
// order.
type Monitor struct {
	epochFrom, stepFrom snapshot
	epoch, step         int
	epochRes, stepRes   Resources
}

// NewMonitor starts measuring now.
func NewMonitor() *Monitor {
	s := takeSnapshot()
	return &Monitor{epochFrom: s, stepFrom: s, epoch: -1, step: -1}
}

// Epoch returns the resources used since the previous epoch's figures were
// taken (since NewMonitor for the first): call it after the epoch (0-based)
// has ended.
func (m *Monitor) Epoch(epoch int) Resources {
	if epoch != m.epoch {
		now := takeSnapshot()
		m.epoch, m.epochRes, m.epochFrom = epoch, now.since(m.epochFrom), now
	}
	return m.epochRes
}

// Step returns the resources used since the previous call for another
// step (since NewMonitor for the first).
func (m *Monitor) Step(step int) Resources {
	if step != m.step {
		now := takeSnapshot()
		m.step, m.stepRes, m.stepFrom = step, now.since(m.stepFrom), now
	}
	return m.stepRes
}

// snapshot holds the process's cumulative counters at one moment.
type snapshot struct {
	at           time.Time
	cpu          time.Duration // user + system
	rss, peakRSS int64
	proc         bool
	heapInuse    uint64
	pauseTotal   uint64 // ns
	numGC        uint32
}

func takeSnapshot() snapshot {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := snapshot{at: time.Now(), heapInuse: ms.HeapInuse, pauseTotal: ms.PauseTotalNs, numGC: ms.NumGC}
	stat, err1 := os.ReadFile("/proc/self/stat")
	status, err2 := os.ReadFile("/proc/self/status")
	if err1 == nil && err2 == nil {
		cpu, err1 := parseProcCPU(stat)
		rss, peak, err2 := parseProcMemory(status)
		if err1 == nil && err2 == nil {
			s.cpu, s.rss, s.peakRSS, s.proc = cpu, rss, peak, true
		}
	}
	return s
}

func (s snapshot) since(prev snapshot) Resources {
	r := Resources{Seconds: s.at.Sub(prev.at).Seconds(), HeapInuse: s.heapInuse,
		GCPause: time.Duration(s.pauseTotal - prev.pauseTotal), NumGC: s.numGC - prev.numGC}
	if s.proc && prev.proc {
		r.Proc, r.RSS, r.PeakRSS = true, s.rss, s.peakRSS
		if r.Seconds > 0 {
			r.CPUPercent = 100 * (s.cpu - prev.cpu).Seconds() / r.Seconds
		}
	}
	return r
}

// clockTick is the unit of the CPU times in /proc/PID/stat: USER_HZ, 100
// on every Linux architecture.
const clockTick = 10 * time.Millisecond

// parseProcCPU returns utime + stime (fields 14 and 15) of a /proc/PID/stat
// line. The command name (field 2) is in parentheses and may hold spaces,
// so the fields are counted from the last ')'.
func parseProcCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("train: monitor: /proc/self/stat has no command name")
	}
	f := bytes.Fields(stat[i+1:]) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, fmt.Errorf("train: monitor: /proc/self/stat has %d fields, want at least 15", len(f)+2)
	}
	var ticks int64
	for _, s := range f[11:13] {
		v, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("train: monitor: /proc/self/stat: %w", err)
		}
		ticks += v
	}
	return time.Duration(ticks) * clockTick, nil
}

// parseProcMemory returns VmRSS and VmHWM, in bytes, of a /proc/PID/status
// file.
func parseProcMemory(status []byte) (rss, peak int64, err error) {
	found := 0
	for line := range bytes.Lines(status) {
		f := bytes.Fields(line)
		if len(f) != 3 || string(f[2]) != "kB" {
			continue
		}
		var dst *int64
		switch string(f[0]) {
		case "VmRSS:":
			dst = &rss
		case "VmHWM:":
			dst = &peak
		default:
			continue
		}
		kb, err := strconv.ParseInt(string(f[1]), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("train: monitor: /proc/self/status %s: %w", f[0], err)
		}
		*dst = kb << 10
		found++
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("train: monitor: /proc/self/status lacks VmRSS or VmHWM")
	}
	return rss, peak, nil
}

// resourceFields returns the resource columns of a record (empty without
// a Monitor) and adds them to rec.
func resourceFields(r *Resources, rec map[string]any) []string {
	if r == nil {
		return make([]string, 7)
	}
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	const mib = 1 << 20
	rec["wall_seconds"], rec["heap_inuse_mib"] = r.Seconds, float64(r.HeapInuse)/mib
	rec["gc_pause_ms"], rec["num_gc"] = float64(r.GCPause)/1e6, r.NumGC
	row := []string{g(r.Seconds), "", "", "", g(float64(r.HeapInuse) / mib), g(float64(r.GCPause) / 1e6), strconv.Itoa(int(r.NumGC))}
	if r.Proc {
		rec["cpu_percent"], rec["rss_mib"], rec["peak_rss_mib"] = r.CPUPercent, float64(r.RSS)/mib, float64(r.PeakRSS)/mib
		row[1], row[2], row[3] = g(r.CPUPercent), g(float64(r.RSS)/mib), g(float64(r.PeakRSS)/mib)
	}
	return row
}
