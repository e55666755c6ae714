package gate

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/spanwatch/spanwatch/internal/deploy"
)

// VersionLabel is the label of service.version.
const VersionLabel = deploy.VersionLabel

// Version is a service version seen in the window, with when it first
// served traffic within the lookback.
type Version struct {
	Name      string
	FirstSeen time.Time
	Requests  float64
}

// Versions lists the versions of the service that served traffic in the
// window, oldest first (by first sample within lookback).
func (s *Source) Versions(ctx context.Context, now time.Time, window, lookback time.Duration) ([]Version, error) {
	sel := s.selector(Arm{})
	v, err := s.query(ctx, fmt.Sprintf("sum by (%s) (increase(%s%s[%s]))", VersionLabel, s.Series.Calls, sel, model.Duration(window)), now)
	if err != nil {
		return nil, err
	}
	var out []Version
	for _, smp := range v {
		name := string(smp.Metric[VersionLabel])
		if name == "" || smp.Value <= 0 {
			continue
		}
		out = append(out, Version{Name: name, Requests: float64(smp.Value)})
	}
	// First samples: coarsely over the lookback, then finely over the last
	// coarse step for versions newer than the coarse steps can see (a
	// canary that started a minute ago). A version newer still counts as
	// first seen now: the newest.
	seen := map[string]time.Time{}
	step := max(lookback/240, 15*time.Second)
	for _, r := range []struct{ rng, step time.Duration }{{lookback, step}, {step, 15 * time.Second}} {
		first, err := s.query(ctx, deploy.FirstSeenExpr(s.Series.Calls, sel, r.rng, r.step), now)
		if err != nil {
			return nil, err
		}
		for _, smp := range first {
			name := string(smp.Metric[VersionLabel])
			if _, ok := seen[name]; !ok {
				seen[name] = time.Unix(0, int64(float64(smp.Value)*1e9))
			}
		}
	}
	for i := range out {
		t, ok := seen[out[i].Name]
		if !ok {
			t = now
		}
		out[i].FirstSeen = t
	}
	slices.SortFunc(out, func(a, b Version) int {
		if c := a.FirstSeen.Compare(b.FirstSeen); c != 0 {
			return c
		}
		return compareStrings(a.Name, b.Name)
	})
	return out, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// VersionArm selects one version.
func VersionArm(version string) Arm {
	return Arm{Matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, VersionLabel, version)}}
}
