// Command soak drives a built spanwatch binary through faults and reports
// what it measured: kill -9 during ingest and restart on the same storage
// (kill9), a full disk under --storage.path (diskfull), and a remote-write
// destination that is down for a while (remotewrite). Each mode lives in
// its own file and registers itself; run one with -mode.
//
//	go build -o /tmp/spanwatch ./cmd/spanwatch
//	cd bench && go run ./soak -bin /tmp/spanwatch -mode kill9
//
// Every address is on loopback, every loop is bounded in count and time,
// and every process it starts is stopped when it returns.
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// mode is one fault scenario. It returns a non-nil error when a property
// it checks does not hold; measurements go to the report.
type mode struct {
	help string
	run  func(e *env) error
}

var modes = map[string]mode{}

// register adds a mode; each mode's file calls it from init.
func register(name, help string, run func(e *env) error) { modes[name] = mode{help, run} }

// env is what every mode gets: the binary, a scratch directory, the shared
// flags, and a report to write measurements to.
type env struct {
	bin     string
	dir     string
	flush   time.Duration
	verbose bool
}

func (e *env) logf(format string, args ...any) {
	fmt.Printf("%s  %s\n", time.Now().UTC().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func main() {
	var names []string
	for n := range modes {
		names = append(names, n)
	}
	sort.Strings(names)
	var (
		modeName = flag.String("mode", "", "fault to run: "+strings.Join(names, ", "))
		bin      = flag.String("bin", "", "path of the built spanwatch binary (required)")
		dir      = flag.String("dir", "", "scratch directory (default: a new temporary one, removed at the end)")
		flush    = flag.Duration("flush", time.Second, "spanmetrics.metrics_flush_interval of the spanwatch under test")
		verbose  = flag.Bool("v", false, "show spanwatch's log output")
	)
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: soak -bin PATH -mode MODE [flags]\n\nmodes:\n")
		for _, n := range names {
			fmt.Fprintf(flag.CommandLine.Output(), "  %-12s %s\n", n, modes[n].help)
		}
		fmt.Fprintf(flag.CommandLine.Output(), "\nflags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	m, ok := modes[*modeName]
	if !ok || *bin == "" {
		flag.Usage()
		os.Exit(2)
	}
	e := &env{bin: *bin, dir: *dir, flush: *flush, verbose: *verbose}
	if e.dir == "" {
		d, err := os.MkdirTemp("", "spanwatch-soak-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		e.dir = d
	}
	err := m.run(e)
	if *dir == "" {
		if rmErr := os.RemoveAll(e.dir); rmErr != nil {
			fmt.Fprintln(os.Stderr, rmErr)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL %s: %v\n", *modeName, err)
		os.Exit(1)
	}
	fmt.Printf("PASS %s\n", *modeName)
}
