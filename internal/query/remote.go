package query

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
)

// Func evaluates an instant query: the shape of Prometheus's
// rules.QueryFunc, so the rules manager can run on a local engine or a
// remote store alike.
type Func func(ctx context.Context, q string, t time.Time) (promql.Vector, error)

// RemoteFunc evaluates instant queries on a Prometheus-compatible HTTP API.
// Float samples and scalars are returned; native-histogram samples are
// skipped (rules over span metrics compare floats).
func RemoteFunc(url string) (Func, error) {
	c, err := api.NewClient(api.Config{Address: url})
	if err != nil {
		return nil, fmt.Errorf("query URL %q: %w", url, err)
	}
	a := v1.NewAPI(c)
	return func(ctx context.Context, q string, t time.Time) (promql.Vector, error) {
		val, _, _, err := a.Query(ctx, q, t)
		if err != nil {
			return nil, err
		}
		switch v := val.(type) {
		case model.Vector:
			out := make(promql.Vector, 0, len(v))
			for _, s := range v {
				if s.Histogram != nil {
					continue
				}
				b := labels.NewScratchBuilder(len(s.Metric))
				for k, lv := range s.Metric {
					b.Add(string(k), string(lv))
				}
				b.Sort()
				out = append(out, promql.Sample{Metric: b.Labels(), T: int64(s.Timestamp), F: float64(s.Value)})
			}
			return out, nil
		case *model.Scalar:
			return promql.Vector{{T: int64(v.Timestamp), F: float64(v.Value), Metric: labels.EmptyLabels()}}, nil
		}
		return nil, fmt.Errorf("rule query %q returned %s, want a vector or scalar", q, val.Type())
	}, nil
}
