package query

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"
)

type refuse struct{ on atomic.Bool }

func (r *refuse) Admit(string) error {
	if r.on.Load() {
		return errors.New("memory limit reached: heap 900MiB is above the soft limit 800MiB; retry later")
	}
	return nil
}

func newLimited(t *testing.T, mutate func(*Options)) *Engine {
	t.Helper()
	o := DefaultOptions()
	mutate(&o)
	e, err := NewEngine(o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close()) })
	return e
}

func exec(t *testing.T, e *Engine, ctx context.Context) error {
	t.Helper()
	q, err := e.NewInstantQuery(ctx, storage.QueryableFunc(func(int64, int64) (storage.Querier, error) { return storage.NoopQuerier(), nil }), nil, "1", time.Unix(0, 0))
	require.NoError(t, err)
	defer q.Close()
	return q.Exec(ctx).Err
}

// TestMemoryLimitRefusesQueries: above the soft limit a query does not
// start (ErrMemoryLimit, the limiter's message kept), and runs again once
// the limiter admits.
func TestMemoryLimitRefusesQueries(t *testing.T) {
	r := &refuse{}
	e := newLimited(t, func(o *Options) { o.Memory = r })
	require.NoError(t, exec(t, e, context.Background()))
	r.on.Store(true)
	err := exec(t, e, context.Background())
	require.ErrorIs(t, err, ErrMemoryLimit)
	require.ErrorContains(t, err, "soft limit")
	q, err := e.NewRangeQuery(context.Background(), storage.QueryableFunc(func(int64, int64) (storage.Querier, error) { return storage.NoopQuerier(), nil }), nil, "1", time.Unix(0, 0), time.Unix(60, 0), time.Second)
	require.NoError(t, err)
	require.ErrorIs(t, q.Exec(context.Background()).Err, ErrMemoryLimit)
	q.Close()
	r.on.Store(false)
	require.NoError(t, exec(t, e, context.Background()))
}

// TestMaxConcurrency: with every slot taken a query waits, and gives up
// with a timeout once --query.timeout passes (or is canceled with its
// request); a freed slot lets it run.
func TestMaxConcurrency(t *testing.T) {
	e := newLimited(t, func(o *Options) { o.MaxConcurrency = 2; o.Timeout = 50 * time.Millisecond })
	require.Equal(t, 2, cap(e.slots))
	e.slots <- struct{}{}
	e.slots <- struct{}{}
	var timeout promql.ErrQueryTimeout
	require.ErrorAs(t, exec(t, e, context.Background()), &timeout)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var canceled promql.ErrQueryCanceled
	require.ErrorAs(t, exec(t, e, ctx), &canceled)
	<-e.slots
	require.NoError(t, exec(t, e, context.Background()))
	require.Len(t, e.slots, 1, "the slot is given back")

	d := newLimited(t, func(*Options) {})
	require.Equal(t, DefaultMaxConcurrency, cap(d.slots), "Prometheus's default, 20")
}
