package main

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of /proc/stat and /proc/self/stat times
// (100 on every mainstream Linux).
const clockTick = 10 * time.Millisecond

// cpuSample is the machine's busy CPU time and this process's CPU time.
type cpuSample struct {
	at          time.Time
	machine     time.Duration
	self        time.Duration
	unavailable bool
}

func sampleCPU() cpuSample {
	s := cpuSample{at: time.Now()}
	var ok1, ok2 bool
	s.machine, ok1 = machineBusy()
	s.self, ok2 = selfCPU()
	s.unavailable = !ok1 || !ok2
	return s
}

// othersCPUs returns how many CPUs other processes kept busy on average
// between two samples.
func othersCPUs(a, b cpuSample) (float64, bool) {
	if a.unavailable || b.unavailable {
		return 0, false
	}
	wall := b.at.Sub(a.at)
	if wall <= 0 {
		return 0, false
	}
	others := (b.machine - a.machine) - (b.self - a.self)
	return max(0, float64(others)/float64(wall)), true
}

// machineBusy reads the non-idle time of all CPUs from /proc/stat.
func machineBusy() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, false
	}
	var busy int64
	// user nice system idle iowait irq softirq steal: all but idle and iowait.
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, false
		}
		busy += v
	}
	return time.Duration(busy) * clockTick, true
}

// selfCPU reads this process's user + system time from /proc/self/stat.
func selfCPU() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state); utime is 14, stime 15
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * clockTick, true
}
