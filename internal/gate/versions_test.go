package gate

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// fakeAPI answers instant queries by the first key the query contains.
type fakeAPI struct {
	v1.API
	answers map[string]model.Vector
}

func (f *fakeAPI) Query(_ context.Context, q string, _ time.Time, _ ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	for k, v := range f.answers {
		if strings.Contains(q, k) {
			return v, nil, nil, nil
		}
	}
	return model.Vector{}, nil, nil, nil
}

func sample(version string, v float64) *model.Sample {
	return &model.Sample{Metric: model.Metric{VersionLabel: model.LabelValue(version)}, Value: model.SampleValue(v)}
}

// TestVersionsOrderNewVersionsLast: a version that started after the last
// coarse step of the lookback is placed by the fine look, or as newest.
func TestVersionsOrderNewVersionsLast(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for name, tc := range map[string]struct {
		fine model.Vector
		want []string
	}{
		"fine look sees it": {model.Vector{sample("v2", float64(now.Unix()-60))}, []string{"v1", "v2"}},
		"too new for both":  {nil, []string{"v1", "v2"}},
	} {
		t.Run(name, func(t *testing.T) {
			api := &fakeAPI{answers: map[string]model.Vector{
				"increase(": {sample("v2", 100), sample("v1", 900)},
				"[1d:6m]":   {sample("v1", float64(now.Unix()-3600))},
				"[6m:15s]":  tc.fine,
			}}
			s := &Source{API: api, Service: "checkout", Series: SeriesFor("otel", "", "")}
			vs, err := s.Versions(context.Background(), now, 5*time.Minute, 24*time.Hour)
			require.NoError(t, err)
			var got []string
			for _, v := range vs {
				got = append(got, v.Name)
			}
			require.Equal(t, tc.want, got)
		})
	}
}
