package query

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
)

// DefaultMaxConcurrency is Prometheus's --query.max-concurrency default.
const DefaultMaxConcurrency = 20

// Admitter decides whether a query may start: the memory limiter.
type Admitter interface {
	// Admit returns an error while new work must wait.
	Admit(component string) error
}

// ErrMemoryLimit marks a query refused because spanwatch is above its soft
// memory limit; the API answers it with 503.
var ErrMemoryLimit = errors.New("query refused")

// limitedQuery runs a query only with a free slot (at most MaxConcurrency
// run at once; the others wait, as behind Prometheus's active query
// tracker, at most the query timeout) and only while the memory limiter
// admits.
type limitedQuery struct {
	promql.Query
	e *Engine
}

func (q *limitedQuery) Exec(ctx context.Context) *promql.Result {
	if q.e.opts.Memory != nil {
		if err := q.e.opts.Memory.Admit("query"); err != nil {
			return &promql.Result{Err: fmt.Errorf("%w: %w", ErrMemoryLimit, err)}
		}
	}
	if q.e.slots != nil {
		wctx, cancel := context.WithTimeout(ctx, q.e.opts.Timeout)
		defer cancel()
		select {
		case q.e.slots <- struct{}{}:
			defer func() { <-q.e.slots }()
		case <-wctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return &promql.Result{Err: promql.ErrQueryCanceled("waiting for one of the --query.max-concurrency query slots")}
			}
			return &promql.Result{Err: promql.ErrQueryTimeout("waiting for one of the --query.max-concurrency query slots")}
		}
	}
	return q.Query.Exec(ctx)
}

// NewInstantQuery returns a query that respects MaxConcurrency and the
// memory limit.
func (e *Engine) NewInstantQuery(ctx context.Context, q storage.Queryable, opts promql.QueryOpts, qs string, ts time.Time) (promql.Query, error) {
	pq, err := e.Engine.NewInstantQuery(ctx, q, opts, qs, ts)
	if err != nil {
		return nil, err
	}
	return &limitedQuery{Query: pq, e: e}, nil
}

// NewRangeQuery returns a query that respects MaxConcurrency and the memory
// limit.
func (e *Engine) NewRangeQuery(ctx context.Context, q storage.Queryable, opts promql.QueryOpts, qs string, start, end time.Time, interval time.Duration) (promql.Query, error) {
	pq, err := e.Engine.NewRangeQuery(ctx, q, opts, qs, start, end, interval)
	if err != nil {
		return nil, err
	}
	return &limitedQuery{Query: pq, e: e}, nil
}
