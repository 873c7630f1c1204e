package main

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// machine describes where a run happened.
type machine struct {
	cpu       string
	cores     int
	maxProcs  int
	goVersion string // this program's
	binGo     string // the measured binary's
	kernel    string
	loadStart string
	loadAfter string
	at        time.Time
}

func readMachine(bin string) machine {
	m := machine{
		cpu:       "unknown",
		cores:     runtime.NumCPU(),
		maxProcs:  runtime.GOMAXPROCS(0),
		goVersion: runtime.Version(),
		binGo:     "unknown",
		kernel:    "unknown",
		loadStart: loadAverage(),
		at:        time.Now().UTC(),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
				m.cpu = strings.TrimSpace(value)
				break
			}
		}
	}
	if info, err := buildinfo.ReadFile(bin); err == nil {
		m.binGo = info.GoVersion
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	return m
}

// loadAverage returns the 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func (m machine) String() string {
	return fmt.Sprintf("machine: %s, %d cores, GOMAXPROCS %d (replicas: Go's default, one per core), Linux %s\n"+
		"go: %s (harness), %s (authsvc binary); run at %s\n"+
		"load average (1 5 15 min): %s before, %s after; the harness's clients and the emulator share the machine with the replicas",
		m.cpu, m.cores, m.maxProcs, m.kernel, m.goVersion, m.binGo, m.at.Format(time.RFC3339), m.loadStart, m.loadAfter)
}
