package gate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMatchersCannotSelectMetricName: a __name__ matcher would put a second
// metric name into every query; it is the request's error (HTTP 400,
// exit 3), not the backend's.
func TestMatchersCannotSelectMetricName(t *testing.T) {
	for _, m := range []string{`__name__="x"`, `{__name__=~"x.*"}`, `service_version="v1", __name__!="y"`} {
		req := &Request{Service: "checkout", Baseline: ArmRequest{Matchers: `service_version="v1"`}, Candidate: ArmRequest{Matchers: m}}
		_, err := NewPlan(req, DefaultConfig(), time.Now())
		var re *RequestError
		require.ErrorAs(t, err, &re, m)
		require.Equal(t, "candidate.matchers", re.Field)
		require.Contains(t, err.Error(), "__name__ cannot be matched")
	}
	_, err := NewPlan(&Request{Service: "checkout", Baseline: ArmRequest{Matchers: `service_version="v1"`},
		Candidate: ArmRequest{Matchers: `service_version="v2"`}}, DefaultConfig(), time.Now())
	require.NoError(t, err)
}
