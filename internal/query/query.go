// Package query owns PromQL evaluation: the engine options spanwatch runs
// with (timeout, sample limit, lookback, @ and negative offsets, native
// histograms), the parser instance, and query functions that evaluate either
// locally over a storage.Queryable or remotely against a Prometheus-compatible
// HTTP API. It serves no HTTP itself.
package query

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
)

// Options configure the PromQL engine.
type Options struct {
	// Timeout bounds one query.
	Timeout time.Duration
	// MaxSamples bounds the samples one query may hold in memory.
	MaxSamples int
	// LookbackDelta is how far back an instant selector looks for a sample.
	LookbackDelta time.Duration
	// MaxConcurrency is how many queries run at once
	// (--query.max-concurrency); the others wait for a slot, at most
	// Timeout. 0 means DefaultMaxConcurrency.
	MaxConcurrency int
	// Memory, when set, refuses queries while spanwatch is above its soft
	// memory limit (ErrMemoryLimit).
	Memory Admitter
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer receives the engine's metrics (prometheus_engine_*); nil
	// registers nothing.
	Registerer prometheus.Registerer
	// Features are Prometheus's PromQL feature flags (see FeatureNames).
	Features Features
}

// Features are the PromQL features Prometheus keeps behind
// --enable-feature; spanwatch offers the same names.
type Features struct {
	ExperimentalFunctions bool // promql-experimental-functions
	DelayedNameRemoval    bool // promql-delayed-name-removal
	StartTimestamps       bool // use start timestamps in rate() and friends
	BinopFillModifiers    bool // promql-binop-fill-modifiers
	UnquotedUTF8Names     bool // promql-unquoted-utf8-names
}

// FeatureNames maps --enable-feature names to the Features field they set.
var FeatureNames = map[string]func(*Features){
	"promql-experimental-functions": func(f *Features) { f.ExperimentalFunctions = true },
	"promql-delayed-name-removal":   func(f *Features) { f.DelayedNameRemoval = true },
	"promql-start-timestamps":       func(f *Features) { f.StartTimestamps = true },
	"promql-binop-fill-modifiers":   func(f *Features) { f.BinopFillModifiers = true },
	"promql-unquoted-utf8-names":    func(f *Features) { f.UnquotedUTF8Names = true },
}

// AllFeatures enables every feature, as Prometheus's own PromQL test suite
// expects.
func AllFeatures() Features {
	var f Features
	for _, set := range FeatureNames {
		set(&f)
	}
	return f
}

// DefaultOptions are Prometheus's defaults: 2 m timeout, 50 M samples, 5 m
// lookback, 20 concurrent queries.
func DefaultOptions() Options {
	return Options{Timeout: 2 * time.Minute, MaxSamples: 50_000_000, LookbackDelta: 5 * time.Minute, MaxConcurrency: DefaultMaxConcurrency}
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.Timeout <= 0 {
		return fmt.Errorf("query timeout must be positive, got %s", o.Timeout)
	}
	if o.MaxSamples <= 0 {
		return fmt.Errorf("query max samples must be positive, got %d", o.MaxSamples)
	}
	if o.MaxConcurrency < 0 {
		return fmt.Errorf("query max concurrency must not be negative, got %d", o.MaxConcurrency)
	}
	if o.LookbackDelta <= 0 {
		return fmt.Errorf("lookback delta must be positive, got %s", o.LookbackDelta)
	}
	return nil
}

// Engine is a PromQL engine with the parser it was built with.
type Engine struct {
	*promql.Engine
	Parser parser.Parser
	opts   Options
	slots  chan struct{}
}

// NewEngine returns an engine with @ modifiers, negative offsets and native
// histograms enabled, as in Prometheus.
func NewEngine(opts Options) (*Engine, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := parser.NewParser(parser.Options{
		EnableExperimentalFunctions: opts.Features.ExperimentalFunctions,
		EnableBinopFillModifiers:    opts.Features.BinopFillModifiers,
		EnableUnquotedUTF8Names:     opts.Features.UnquotedUTF8Names,
	})
	e := promql.NewEngine(promql.EngineOpts{
		Logger:               opts.Logger,
		Reg:                  opts.Registerer,
		MaxSamples:           opts.MaxSamples,
		Timeout:              opts.Timeout,
		LookbackDelta:        opts.LookbackDelta,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		NoStepSubqueryIntervalFn: func(int64) int64 {
			return time.Minute.Milliseconds()
		},
		EnableDelayedNameRemoval: opts.Features.DelayedNameRemoval,
		UseStartTimestamps:       opts.Features.StartTimestamps,
		Parser:                   p,
	})
	if opts.MaxConcurrency == 0 {
		opts.MaxConcurrency = DefaultMaxConcurrency
	}
	return &Engine{Engine: e, Parser: p, opts: opts, slots: make(chan struct{}, opts.MaxConcurrency)}, nil
}

// QueryOpts returns the per-query options (lookback) to pass to the
// engine's NewInstantQuery and NewRangeQuery.
func (e *Engine) QueryOpts() promql.QueryOpts {
	return promql.NewPrometheusQueryOpts(false, e.opts.LookbackDelta, nil)
}

// Options returns the options the engine was built with.
func (e *Engine) Options() Options { return e.opts }
