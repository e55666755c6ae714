package deploy

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	t0  = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	grp = GroupOf("checkout", "shop/checkout", "")
)

// sim drives a tracker as a poller would, answering first-seen questions
// from the first look at which a version served.
type sim struct {
	t     *testing.T
	tr    *Tracker
	now   time.Time
	first map[VersionKey]time.Time
}

func newSim(t *testing.T) *sim {
	return &sim{t: t, tr: NewTracker(TrackerOptions{MaxVersions: 5, MaxEvents: 10, FlushInterval: 15 * time.Second, Lookback: 24 * time.Hour}),
		now: t0, first: map[VersionKey]time.Time{}}
}

// look applies one look with requests per version, then advances 15 s.
func (s *sim) look(reqs map[string]float64) []*Event {
	var act []Activity
	for v, n := range reqs {
		act = append(act, Activity{Group: grp, Version: v, Requests: n})
		k := VersionKey{Group: grp, Version: v}
		if _, ok := s.first[k]; !ok && n > 0 {
			s.first[k] = s.now
		}
	}
	fs := map[VersionKey]time.Time{}
	for _, k := range s.tr.Unknown(act) {
		for vk, at := range s.first {
			if vk.Group == k.Group && (k.Version == "" || vk.Version == k.Version) {
				fs[vk] = at
			}
		}
	}
	evs := s.tr.Observe(Look{Now: s.now, Activity: act, FirstSeen: fs})
	s.now = s.now.Add(15 * time.Second)
	return evs
}

func TestTrackerNewVersionIsOneEvent(t *testing.T) {
	s := newSim(t)
	for range 4 {
		require.Empty(t, s.look(map[string]float64{"v1": 100}), "the first version a group shows is no deployment")
	}
	at := s.now
	evs := s.look(map[string]float64{"v1": 90, "v2": 10})
	require.Len(t, evs, 1)
	e := evs[0]
	require.Equal(t, "v2", e.Version)
	require.Equal(t, "v1", e.PreviousVersion)
	require.Equal(t, []string{"v1"}, e.PreviousVersions)
	require.Equal(t, at, e.FirstSeen)
	require.Equal(t, "shop", e.Namespace)
	require.Equal(t, ShapeCanary, e.Shape)
	require.Equal(t, StateWatching, e.State)
	require.Equal(t, VerdictPending, e.Verdict)
	for range 10 {
		require.Empty(t, s.look(map[string]float64{"v1": 90, "v2": 10}), "a version already seen is no new event")
	}
}

func TestTrackerFlapIsNoEvent(t *testing.T) {
	s := newSim(t)
	s.look(map[string]float64{"v1": 100})
	require.Len(t, s.look(map[string]float64{"v1": 50, "v2": 50}), 1)
	s.look(map[string]float64{"v2": 100})
	s.look(map[string]float64{"v2": 100})
	// An old pod reports briefly: v1 serves again, a small share.
	require.Empty(t, s.look(map[string]float64{"v2": 100, "v1": 3}))
	require.Empty(t, s.look(map[string]float64{"v2": 100, "v1": 1}))
	require.Empty(t, s.look(map[string]float64{"v2": 100}))
	require.Len(t, s.tr.Events(), 1)
}

func TestTrackerRollback(t *testing.T) {
	s := newSim(t)
	s.look(map[string]float64{"v1": 100})
	s.look(map[string]float64{"v1": 50, "v2": 50})
	s.look(map[string]float64{"v2": 100})
	back := s.now
	require.Empty(t, s.look(map[string]float64{"v2": 80, "v1": 20}), "a returning version below half is not yet a rollback")
	evs := s.look(map[string]float64{"v2": 30, "v1": 70})
	require.Len(t, evs, 1)
	require.Equal(t, ShapeRollback, evs[0].Shape)
	require.Equal(t, "v1", evs[0].Version)
	require.Equal(t, "v2", evs[0].PreviousVersion)
	require.Equal(t, back, evs[0].FirstSeen, "first seen when it served again")
}

func TestTrackerProgressShapes(t *testing.T) {
	const act = time.Minute
	for _, tc := range []struct {
		name      string
		prev      []float64 // previous version's requests per look
		late      float64
		wantShape Shape
		ended     bool
	}{
		{"canary", []float64{90, 91, 89, 90}, 0, ShapeCanary, false},
		{"rolling", []float64{80, 60, 40, 20, 0}, 100, ShapeRolling, true},
		{"switch", []float64{0}, 0, ShapeSwitch, true},
		{"falling", []float64{80, 40}, 0, ShapeRolling, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEvent(grp, "v2", t0, []string{"v1"})
			e.BaselineRate = 100.0 / act.Seconds()
			now := t0
			ended := false
			for _, n := range tc.prev {
				now = now.Add(15 * time.Second)
				if e.Progress(now, n, act) {
					ended = true
					e.SettleShape(tc.late)
				}
			}
			require.Equal(t, tc.ended, ended)
			require.Equal(t, tc.wantShape, e.Shape)
			require.Equal(t, t0.Add(15*time.Second), e.FallAt, "the first look below the rate before first_seen")
			w := e.VerdictWindows(5 * time.Minute)
			if !ended {
				require.Equal(t, ModeSameWindow, w.Mode)
				return
			}
			require.Equal(t, ModeBeforeAfter, w.Mode)
			require.Equal(t, e.FallAt, w.BaselineEnd)
			require.Equal(t, e.FallAt.Add(-5*time.Minute), w.BaselineStart)
			require.Equal(t, now, w.CandidateStart, "the candidate starts at the rollout's end")
		})
	}
}

func TestTrackerNoPreviousVersion(t *testing.T) {
	e := newEvent(grp, "v2", t0, nil)
	require.True(t, e.VerdictWindows(time.Minute).NoPrevious)
	require.Equal(t, []string{}, e.PreviousVersions)
}

func TestTrackerBounded(t *testing.T) {
	s := newSim(t)
	s.look(map[string]float64{"v0": 10})
	for i := 1; i <= 300; i++ {
		evs := s.look(map[string]float64{fmt.Sprint("v", i): 10})
		require.Len(t, evs, 1, "version %d", i)
		for _, e := range s.tr.Events() {
			e.State = StateDecided
		}
	}
	require.LessOrEqual(t, s.tr.Versions(), 5)
	require.Len(t, s.tr.Events(), 10)
	require.Equal(t, "v300", s.tr.Events()[9].Version, "the newest events stay")
}

func TestTrackerUnversioned(t *testing.T) {
	s := newSim(t)
	act := []Activity{{Group: GroupOf("legacy", "legacy", ""), Requests: 10}}
	require.Empty(t, s.tr.Unknown(act))
	require.Empty(t, s.tr.Observe(Look{Now: t0, Activity: act}))
	require.Equal(t, []string{"legacy"}, s.tr.Unversioned(t0.Add(-time.Hour)))
}

func TestTrackerClockSkew(t *testing.T) {
	s := newSim(t)
	s.look(map[string]float64{"v1": 10})
	// The store answers a first-seen time ten minutes ahead (a replica's
	// clock): it is clamped to the look, and makes no second event.
	act := []Activity{{Group: grp, Version: "v1", Requests: 10}, {Group: grp, Version: "v2", Requests: 1}}
	fs := map[VersionKey]time.Time{{Group: grp, Version: "v2"}: s.now.Add(10 * time.Minute)}
	evs := s.tr.Observe(Look{Now: s.now, Activity: act, FirstSeen: fs})
	require.Len(t, evs, 1)
	require.Equal(t, s.now, evs[0].FirstSeen)
	require.Empty(t, s.tr.Observe(Look{Now: s.now.Add(15 * time.Second), Activity: act, FirstSeen: fs}))
}

func TestTrackerRebuildsFromStoredData(t *testing.T) {
	tr := NewTracker(TrackerOptions{MaxVersions: 10, MaxEvents: 10, FlushInterval: 15 * time.Second, Lookback: 24 * time.Hour})
	now := t0.Add(time.Hour)
	act := []Activity{{Group: grp, Version: "v2", Requests: 100}}
	require.Equal(t, []VersionKey{{Group: grp}}, tr.Unknown(act))
	evs := tr.Observe(Look{Now: now, Activity: act, FirstSeen: map[VersionKey]time.Time{
		{Group: grp, Version: "v1"}: t0, {Group: grp, Version: "v2"}: t0.Add(40 * time.Minute),
	}})
	require.Len(t, evs, 1)
	require.True(t, evs[0].Rebuilt)
	require.Equal(t, "v1", evs[0].PreviousVersion)
	require.Equal(t, t0.Add(40*time.Minute), evs[0].FirstSeen)

	// The record round-trips.
	dir := t.TempDir()
	require.NoError(t, tr.Save(dir))
	tr2 := NewTracker(TrackerOptions{MaxVersions: 10, MaxEvents: 10})
	require.NoError(t, tr2.Load(dir))
	require.Len(t, tr2.Events(), 1)
	require.Equal(t, evs[0].ID, tr2.Events()[0].ID)
	require.Empty(t, tr2.Unknown(act), "known after the restart")
	require.Empty(t, tr2.Observe(Look{Now: now.Add(time.Minute), Activity: act}))
}
