// Command detection prints the detection-quality matrix of spanwatch's
// regression gate and the recipe's rule as markdown (see package
// github.com/spanwatch/spanwatch/bench/detection).
//
//	cd bench && go run ./detection/cmd/detection > detection/RESULTS.md
//
// -runs sets the runs per cell (500 by default), -rollout-runs those of the
// deployment table (rollout, 200 by default), -seed the seed, -workers the
// goroutines over cells, -tables a comma-separated subset of tables
// (headline, shapes, bimodal, heavy, offset, product, recipe, rollout). The
// output depends only on -runs, -rollout-runs, -seed and -tables. Progress
// goes to stderr.
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
	rolloutRuns := flag.Int("rollout-runs", 200, "runs per cell of the deployment table (rollout)")
	seed := flag.Uint64("seed", 1, "random seed")
	workers := flag.Int("workers", runtime.NumCPU(), "goroutines over cells")
	tables := flag.String("tables", "", "comma-separated tables to run (default: all)")
	flag.Parse()
	if *runs < 1 || *rolloutRuns < 1 {
		fmt.Fprintln(os.Stderr, "detection: -runs and -rollout-runs must be ≥ 1")
		os.Exit(2)
	}
	cells := detection.Cells()
	rollout := detection.RolloutCells()
	if *tables != "" {
		want := strings.Split(*tables, ",")
		cells = slices.DeleteFunc(cells, func(c detection.Cell) bool { return !slices.Contains(want, c.Table) })
		if !slices.Contains(want, detection.TableRollout) {
			rollout = nil
		}
		if len(cells) == 0 && len(rollout) == 0 {
			fmt.Fprintf(os.Stderr, "detection: no cells in tables %q\n", *tables)
			os.Exit(2)
		}
	}
	start := time.Now()
	out := bufio.NewWriter(os.Stdout)
	if len(cells) > 0 {
		results, err := detection.RunAll(cells, *runs, *seed, *workers, os.Stderr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "detection:", err)
			os.Exit(1)
		}
		detection.WriteReport(out, results, detection.Options{Runs: *runs, Seed: *seed})
		fmt.Fprintf(os.Stderr, "%d cells × %d runs in %s\n", len(cells), *runs, time.Since(start).Round(time.Second))
	}
	if len(rollout) > 0 {
		t := time.Now()
		results, err := detection.RunRollouts(rollout, *rolloutRuns, *seed, *workers, os.Stderr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "detection:", err)
			os.Exit(1)
		}
		detection.WriteRollout(out, results, *rolloutRuns, *seed)
		fmt.Fprintf(os.Stderr, "%d rollout cells × %d runs in %s\n", len(rollout), *rolloutRuns, time.Since(t).Round(time.Second))
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "detection:", err)
		os.Exit(1)
	}
}
