package deploy

import (
	"cmp"
	"slices"
	"time"
)

// Activity is one version's requests in the activity window of a look.
// An empty Version is a service that reports no service.version.
type Activity struct {
	Group    Group
	Version  string
	Requests float64
}

// VersionKey names a version of a group.
type VersionKey struct {
	Group   Group
	Version string
}

// Look is what one poll read: the activity of every version at Now and,
// for the versions Tracker.Unknown asked about, when each first served
// within the lookback (zero: not found). For a group the tracker has not
// seen, FirstSeen holds every version of the group found in the lookback.
type Look struct {
	Now       time.Time
	Activity  []Activity
	FirstSeen map[VersionKey]time.Time
}

// TrackerOptions bound the tracker.
type TrackerOptions struct {
	// MaxVersions per group, MaxEvents in all (see Config).
	MaxVersions, MaxEvents int
	// FlushInterval is the span-metrics flush interval: versions first seen
	// within two of them count as appearing together.
	FlushInterval time.Duration
	// Lookback is how far first appearances are looked for.
	Lookback time.Duration
	// MaxRebuild bounds the events rebuilt per group from stored data when
	// the tracker first sees a group (default 3).
	MaxRebuild int
}

// Tracker holds the versions of every group and the events found. It is
// not safe for concurrent use; the caller serialises looks.
type Tracker struct {
	opts   TrackerOptions
	groups map[string]*groupState
	events []*Event // by FirstSeen, oldest first
	// Unversioned maps services that report no service.version to the last
	// look at which they served.
	unversioned map[string]time.Time
	lastLook    time.Time
}

type groupState struct {
	Group    Group                    `json:"group"`
	Current  string                   `json:"current"` // the version the latest event (or the first look) made current
	Versions map[string]*versionState `json:"versions"`
}

type versionState struct {
	FirstSeen  time.Time `json:"first_seen"`
	LastActive time.Time `json:"last_active"`
	Active     bool      `json:"active"`
	// Returned: served again after a look at which it did not, while not
	// current: a rollback when it takes over, a flap otherwise.
	Returned      bool      `json:"returned,omitempty"`
	ReturnedSince time.Time `json:"returned_since,omitzero"`
}

// maxUnversioned bounds the services listed without a version.
const maxUnversioned = 1000

// NewTracker returns an empty tracker.
func NewTracker(o TrackerOptions) *Tracker {
	if o.MaxRebuild <= 0 {
		o.MaxRebuild = 3
	}
	if o.MaxVersions < 2 {
		o.MaxVersions = 2
	}
	if o.MaxEvents < 1 {
		o.MaxEvents = 1
	}
	return &Tracker{opts: o, groups: map[string]*groupState{}, unversioned: map[string]time.Time{}}
}

// Unknown lists what a look must read first-seen times for: versions the
// tracker has never seen, and groups it has never seen (Version empty:
// every version of the group in the lookback).
func (t *Tracker) Unknown(act []Activity) []VersionKey {
	var out []VersionKey
	asked := map[string]bool{}
	for _, a := range act {
		if a.Version == "" || a.Requests <= 0 {
			continue
		}
		g, ok := t.groups[a.Group.key()]
		switch {
		case !ok:
			if !asked[a.Group.key()] {
				asked[a.Group.key()] = true
				out = append(out, VersionKey{Group: a.Group})
			}
		case g.Versions[a.Version] == nil:
			out = append(out, VersionKey{Group: a.Group, Version: a.Version})
		}
	}
	return out
}

// Observe applies a look and returns the events it found, newest last.
//
// The flap rule: a version that the group has served before and that
// serves again while it is not the current version creates an event (a
// rollback) only when it serves at least half of the group's requests in
// the activity window; a pod of an old ReplicaSet reporting briefly, or
// draining, creates none. A version never seen before creates an event at
// its first look, however small its share (a canary starts small).
//
// First-seen times come from the stored samples (the flush that first held
// the version), never from span timestamps, and are clamped to the look's
// time: spans whose end times are minutes off do not move them.
func (t *Tracker) Observe(l Look) []*Event {
	byGroup := map[string][]Activity{}
	var order []string
	for _, a := range l.Activity {
		if a.Requests <= 0 {
			continue
		}
		if a.Version == "" {
			t.noteUnversioned(a.Group.Service, l.Now)
			continue
		}
		k := a.Group.key()
		if _, ok := byGroup[k]; !ok {
			order = append(order, k)
		}
		byGroup[k] = append(byGroup[k], a)
	}
	var found []*Event
	for _, k := range order {
		acts := byGroup[k]
		g, ok := t.groups[k]
		if !ok {
			g = t.newGroup(acts[0].Group, l, &found)
			t.groups[k] = g
			continue
		}
		found = append(found, t.observeGroup(g, acts, l)...)
	}
	// Groups without activity: every version idle.
	for k, g := range t.groups {
		if _, ok := byGroup[k]; ok {
			continue
		}
		for _, v := range g.Versions {
			v.Active = false
		}
	}
	for _, e := range found {
		t.addEvent(e)
	}
	t.lastLook = l.Now
	return found
}

// firstSeen returns the version's first-seen time from the look, clamped
// to [now - lookback, now]; not found: now.
func (t *Tracker) firstSeen(l Look, g Group, version string) time.Time {
	fs, ok := l.FirstSeen[VersionKey{Group: g, Version: version}]
	if !ok || fs.IsZero() || fs.After(l.Now) {
		return l.Now
	}
	if lo := l.Now.Add(-t.opts.Lookback); fs.Before(lo) {
		return lo
	}
	return fs
}

// newGroup starts a group the tracker has not seen: its versions in the
// lookback are known; those that first served after the group's first
// version (and not at the lookback's start) are events rebuilt from stored
// data, the latest MaxRebuild of them.
func (t *Tracker) newGroup(grp Group, l Look, found *[]*Event) *groupState {
	g := &groupState{Group: grp, Versions: map[string]*versionState{}}
	active := map[string]float64{}
	for _, a := range l.Activity {
		if a.Group.key() == grp.key() && a.Version != "" && a.Requests > 0 {
			active[a.Version] = a.Requests
		}
	}
	type vf struct {
		name string
		at   time.Time
	}
	var vs []vf
	for k, at := range l.FirstSeen {
		if k.Group.key() == grp.key() && k.Version != "" && !at.IsZero() {
			vs = append(vs, vf{k.Version, t.firstSeen(l, grp, k.Version)})
		}
	}
	for name := range active {
		if _, ok := l.FirstSeen[VersionKey{Group: grp, Version: name}]; !ok {
			vs = append(vs, vf{name, l.Now})
		}
	}
	slices.SortFunc(vs, func(a, b vf) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.name, b.name)
	})
	for _, v := range vs {
		_, act := active[v.name]
		g.Versions[v.name] = &versionState{FirstSeen: v.at, Active: act, LastActive: l.Now}
	}
	if len(vs) == 0 {
		return g
	}
	start := vs[0].at
	var rebuilt []*Event
	for i := 1; i < len(vs); i++ {
		if vs[i].at.Sub(start) <= 2*t.opts.FlushInterval {
			continue // served together from the start of the data
		}
		e := newEvent(grp, vs[i].name, vs[i].at, []string{vs[i-1].name})
		e.Rebuilt = true
		rebuilt = append(rebuilt, e)
	}
	if n := len(rebuilt); n > t.opts.MaxRebuild {
		rebuilt = rebuilt[n-t.opts.MaxRebuild:]
	}
	*found = append(*found, rebuilt...)
	// The current version: the newest that serves, else the newest.
	g.Current = vs[len(vs)-1].name
	for i := len(vs) - 1; i >= 0; i-- {
		if _, ok := active[vs[i].name]; ok {
			g.Current = vs[i].name
			break
		}
	}
	t.trim(g)
	return g
}

func (t *Tracker) observeGroup(g *groupState, acts []Activity, l Look) []*Event {
	var total float64
	now := map[string]float64{}
	for _, a := range acts {
		total += a.Requests
		now[a.Version] += a.Requests
	}
	// Versions serving at the previous look, most requests first order
	// comes later; the current version leads.
	var before []string
	for name, v := range g.Versions {
		if v.Active {
			before = append(before, name)
		}
	}
	previous := func(except string) []string {
		var ps []string
		if g.Current != "" && g.Current != except {
			ps = append(ps, g.Current)
		}
		rest := slices.DeleteFunc(slices.Clone(before), func(n string) bool { return n == except || n == g.Current })
		slices.Sort(rest)
		return append(ps, rest...)
	}
	var found []*Event
	names := make([]string, 0, len(now))
	for n := range now {
		names = append(names, n)
	}
	// New versions in first-seen order, so that two at once chain.
	slices.SortFunc(names, func(a, b string) int {
		if c := t.firstSeen(l, g.Group, a).Compare(t.firstSeen(l, g.Group, b)); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	for _, name := range names {
		v := g.Versions[name]
		switch {
		case v == nil:
			fs := t.firstSeen(l, g.Group, name)
			e := newEvent(g.Group, name, fs, previous(name))
			found = append(found, e)
			g.Versions[name] = &versionState{FirstSeen: fs, Active: true, LastActive: l.Now}
			g.Current = name
			continue
		case !v.Active && name != g.Current:
			v.Returned, v.ReturnedSince = true, l.Now
		}
		v.Active, v.LastActive = true, l.Now
		if v.Returned && name != g.Current && total > 0 && now[name]/total >= 0.5 {
			e := newEvent(g.Group, name, v.ReturnedSince, previous(name))
			e.Shape = ShapeRollback
			found = append(found, e)
			g.Current = name
			v.Returned = false
		}
	}
	for name, v := range g.Versions {
		if _, ok := now[name]; !ok {
			v.Active = false
			if name != g.Current {
				v.Returned = false
			}
		}
	}
	t.trim(g)
	return found
}

func newEvent(g Group, version string, firstSeen time.Time, previous []string) *Event {
	e := &Event{
		ID: eventID(g, version, firstSeen), Group: g, Version: version, FirstSeen: firstSeen,
		PreviousVersions: previous, Shape: ShapeCanary, State: StateWatching, Verdict: VerdictPending,
		BaselineRate: -1,
	}
	if len(previous) > 0 {
		e.PreviousVersion = previous[0]
	}
	if e.PreviousVersions == nil {
		e.PreviousVersions = []string{}
	}
	return e
}

// trim forgets the longest-idle versions past MaxVersions; the current
// version and the serving ones stay. A forgotten version that serves again
// counts as new.
func (t *Tracker) trim(g *groupState) {
	if len(g.Versions) <= t.opts.MaxVersions {
		return
	}
	type idle struct {
		name string
		at   time.Time
	}
	var cands []idle
	for n, v := range g.Versions {
		if n != g.Current && !v.Active {
			cands = append(cands, idle{n, v.LastActive})
		}
	}
	slices.SortFunc(cands, func(a, b idle) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.name, b.name)
	})
	for _, c := range cands {
		if len(g.Versions) <= t.opts.MaxVersions {
			break
		}
		delete(g.Versions, c.name)
	}
}

func (t *Tracker) noteUnversioned(service string, now time.Time) {
	if _, ok := t.unversioned[service]; !ok && len(t.unversioned) >= maxUnversioned {
		return
	}
	t.unversioned[service] = now
}

// addEvent keeps events by first-seen time and drops the oldest decided
// ones past MaxEvents (the oldest at all if every one is watching).
func (t *Tracker) addEvent(e *Event) {
	for _, old := range t.events {
		if old.ID == e.ID {
			return
		}
	}
	i, _ := slices.BinarySearchFunc(t.events, e, func(a, b *Event) int { return a.FirstSeen.Compare(b.FirstSeen) })
	t.events = slices.Insert(t.events, i, e)
	for len(t.events) > t.opts.MaxEvents {
		drop := 0
		for j, old := range t.events {
			if old.State == StateDecided {
				drop = j
				break
			}
		}
		t.events = slices.Delete(t.events, drop, drop+1)
	}
}

// Events returns the events, oldest first. The pointers are the tracker's.
func (t *Tracker) Events() []*Event { return t.events }

// Event returns the event with id, or nil.
func (t *Tracker) Event(id string) *Event {
	for _, e := range t.events {
		if e.ID == id {
			return e
		}
	}
	return nil
}

// Unversioned lists the services that served without service.version
// since since, sorted.
func (t *Tracker) Unversioned(since time.Time) []string {
	var out []string
	for s, at := range t.unversioned {
		if !at.Before(since) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// LastLook is the time of the last look applied.
func (t *Tracker) LastLook() time.Time { return t.lastLook }

// Versions is the number of versions remembered, over all groups.
func (t *Tracker) Versions() int {
	n := 0
	for _, g := range t.groups {
		n += len(g.Versions)
	}
	return n
}
