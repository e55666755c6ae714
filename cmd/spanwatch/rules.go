package main

import (
	"fmt"
	"io"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/spanwatch/spanwatch/internal/config"
	"github.com/spanwatch/spanwatch/internal/rules"
	"github.com/spanwatch/spanwatch/internal/spanmetrics"
)

type rulesCmd struct {
	configFile string
	files      []string
}

func newRulesCmd(a *kingpin.Application) *rulesCmd {
	c := &rulesCmd{}
	r := a.Command("rules", "Work with alerting and recording rules.")
	p := r.Command("print", "Print the built-in service-performance alert pack as a Prometheus rules file, for the naming and thresholds of --config.file.")
	p.Flag("config.file", "Configuration file (its exposition naming and rules.builtin section apply).").PlaceHolder("<path>").StringVar(&c.configFile)
	ch := r.Command("check", "Check Prometheus rule files as spanwatch loads them (exit 1 on problems).")
	ch.Arg("file", "Rule files.").Required().ExistingFilesVar(&c.files)
	return c
}

// print writes the pack.
func (c *rulesCmd) print(stdout io.Writer) error {
	f := config.Default()
	if c.configFile != "" {
		var err error
		if f, err = config.Load(c.configFile); err != nil {
			return usageError{err}
		}
	}
	pack, err := rules.Pack(spanmetrics.NewNames(f.SpanMetrics, f.Exposition), f.Rules.Builtin)
	if err != nil {
		return err
	}
	_, err = stdout.Write(pack)
	return err
}

// check validates rule files; it returns the exit code.
func (c *rulesCmd) check(stdout, stderr io.Writer) int {
	p := parser.NewParser(parser.Options{})
	code := exitOK
	for _, f := range c.files {
		groups, errs := rulefmt.ParseFile(f, false, model.UTF8Validation, p, nil)
		if len(errs) > 0 {
			code = exitFailure
			fmt.Fprintf(stderr, "%s: FAILED:\n", f)
			for _, e := range errs {
				fmt.Fprintf(stderr, "  %v\n", e)
			}
			continue
		}
		n := 0
		for _, g := range groups.Groups {
			n += len(g.Rules)
		}
		fmt.Fprintf(stdout, "%s: SUCCESS: %d rules in %d groups\n", f, n, len(groups.Groups))
	}
	return code
}
