package gate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPlanBeforeAfter: a baseline range with a candidate that has a start
// only is a time-shifted comparison: offset mode's thresholds and a note;
// the candidate's range grows with each look.
func TestPlanBeforeAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	req := &Request{Service: "checkout",
		Baseline:  ArmRequest{Matchers: `service_version="v1"`, Start: "2026-01-01T11:40:00Z", End: "2026-01-01T11:45:00Z"},
		Candidate: ArmRequest{Matchers: `service_version="v2"`, Start: "2026-01-01T11:50:00.5Z"},
	}
	p, err := NewPlan(req, DefaultConfig(), now)
	require.NoError(t, err)
	require.True(t, p.Candidate.Open())
	require.True(t, p.TimeShifted())
	require.False(t, p.Offset())
	require.Equal(t, DefaultConfig().Thresholds.ForOffset().MinRatio, p.Config.MinRatio)
	require.Contains(t, p.Notes[0], "time-shifted")
	require.Contains(t, p.Candidate.Describe(time.Minute), "since 2026-01-01T11:50:00Z")

	rng, at := rangeAndTime(p.Candidate, now, time.Minute)
	require.Equal(t, "[9m59s500ms]", rng)
	require.Equal(t, now, at)
	rng, _ = rangeAndTime(p.Candidate, p.Candidate.Start.Add(-time.Minute), time.Minute)
	require.Equal(t, "[1ms]", rng, "before its start the candidate holds nothing")

	for _, tc := range []struct {
		name  string
		b, c  ArmRequest
		field string
	}{
		{"open baseline", ArmRequest{Start: "-10m"}, ArmRequest{Start: "-5m"}, "baseline"},
		{"open candidate without baseline range", ArmRequest{}, ArmRequest{Start: "-5m"}, "baseline"},
		{"overlap", ArmRequest{Start: "-10m", End: "-2m"}, ArmRequest{Start: "-5m"}, "baseline.end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewPlan(&Request{Service: "s", Baseline: tc.b, Candidate: tc.c}, DefaultConfig(), now)
			var re *RequestError
			require.ErrorAs(t, err, &re)
			require.Equal(t, tc.field, re.Field, err.Error())
		})
	}
}
