// Command detection prints the detection-quality matrix of spanwatch's
// regression gate and the recipe's rule as markdown (see package
// github.com/spanwatch/spanwatch/bench/detection).
//
//	cd bench && go run ./detection/cmd/detection > detection/RESULTS.md
//
// -runs sets the runs per cell (500 by default), -seed the seed, -workers
// the goroutines over cells, -tables a comma-separated subset of tables
// (headline, shapes, bimodal, heavy, offset, product, recipe). The output
// depends only on -runs, -seed and -tables. Progress goes to stderr.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spanwatch/spanwatch/bench/detection"
)

func main() {
	runs := flag.Int("runs", 500, "runs per cell")
	seed := flag.Uint64("seed", 1, "random seed")
	workers := flag.Int("workers", runtime.NumCPU(), "goroutines over cells")
	tables := flag.String("tables", "", "comma-separated tables to run (default: all)")
	flag.Parse()
	if *runs < 1 {
		fmt.Fprintln(os.Stderr, "detection: -runs must be ≥ 1")
		os.Exit(2)
	}
	cells := detection.Cells()
	if *tables != "" {
		want := strings.Split(*tables, ",")
		cells = slices.DeleteFunc(cells, func(c detection.Cell) bool { return !slices.Contains(want, c.Table) })
		if len(cells) == 0 {
			fmt.Fprintf(os.Stderr, "detection: no cells in tables %q\n", *tables)
			os.Exit(2)
		}
	}
	start := time.Now()
	results, err := detection.RunAll(cells, *runs, *seed, *workers, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "detection:", err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	detection.WriteReport(out, results, detection.Options{Runs: *runs, Seed: *seed})
	if err := out.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "detection:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "%d cells × %d runs in %s\n", len(cells), *runs, time.Since(start).Round(time.Second))
}
