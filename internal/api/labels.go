package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/timestamp"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// checkContextEvery is how many series /series reads between checks of the
// request's context.
const checkContextEvery = 128

var errTruncated = errors.New("results truncated due to limit")

// series lists the label sets of the series matching match[] (required)
// between start and end (default: all time), at most limit.
func (a *API) series(r *http.Request) apiResult {
	selectors := r.Form["match[]"]
	if len(selectors) == 0 {
		return fail(badData(errors.New("no match[] parameter provided")))
	}
	limit, err := parseLimit(r.FormValue("limit"))
	if err != nil {
		return fail(invalidParam(err, "limit"))
	}
	start, err := parseTimeParam(r, "start", minTime)
	if err != nil {
		return fail(invalidParam(err, "start"))
	}
	end, err := parseTimeParam(r, "end", maxTime)
	if err != nil {
		return fail(invalidParam(err, "end"))
	}
	sets, err := parseMatchers(a.parser, selectors)
	if err != nil {
		return fail(invalidParam(err, "match[]"))
	}
	q, err := a.queryable.Querier(timestamp.FromTime(start), timestamp.FromTime(end))
	if err != nil {
		return fail(execError(err))
	}
	closer := func() { _ = q.Close() }

	ctx := r.Context()
	hints := &storage.SelectHints{
		Start: timestamp.FromTime(start),
		End:   timestamp.FromTime(end),
		Func:  "series", // No samples needed.
		Limit: hintLimit(limit),
	}
	var set storage.SeriesSet
	if len(sets) > 1 {
		all := make([]storage.SeriesSet, 0, len(sets))
		for _, ms := range sets {
			// Sorted, so that the merge deduplicates.
			all = append(all, q.Select(ctx, true, hints, ms...))
		}
		set = storage.NewMergeSeriesSet(all, 0, storage.ChainedSeriesMerge)
	} else {
		set = q.Select(ctx, false, hints, sets[0]...)
	}

	metrics := labelSetsJSON{}
	for i := 1; set.Next(); i++ {
		if i%checkContextEvery == 0 {
			if err := ctx.Err(); err != nil {
				return apiResult{err: execError(err), finalizer: closer}
			}
		}
		metrics = append(metrics, set.At().Labels())
		if limit > 0 && len(metrics) > limit {
			warnings := set.Warnings()
			return apiResult{data: metrics[:limit], warnings: warnings.Add(errTruncated), finalizer: closer}
		}
	}
	if err := set.Err(); err != nil {
		return apiResult{err: execError(err), finalizer: closer}
	}
	return apiResult{data: metrics, warnings: set.Warnings(), finalizer: closer}
}

// labelNames lists label names, of the series matching match[] if given,
// between start and end, at most limit.
func (a *API) labelNames(r *http.Request) apiResult {
	limit, start, end, sets, apiErr := a.labelParams(r)
	if apiErr != nil {
		return fail(apiErr)
	}
	q, err := a.queryable.Querier(timestamp.FromTime(start), timestamp.FromTime(end))
	if err != nil {
		return fail(execError(err))
	}
	defer func() { _ = q.Close() }()

	ctx := r.Context()
	hints := &storage.LabelHints{Limit: hintLimit(limit)}
	var (
		names    []string
		warnings annotations.Annotations
	)
	if len(sets) > 1 {
		union := map[string]struct{}{}
		for _, ms := range sets {
			vals, ws, err := q.LabelNames(ctx, hints, ms...)
			if err != nil {
				return fail(execError(err))
			}
			warnings = warnings.Merge(ws)
			for _, v := range vals {
				union[v] = struct{}{}
			}
		}
		names = make([]string, 0, len(union))
		for v := range union {
			names = append(names, v)
		}
		slices.Sort(names)
	} else {
		var ms []*labels.Matcher
		if len(sets) == 1 {
			ms = sets[0]
		}
		names, warnings, err = q.LabelNames(ctx, hints, ms...)
		if err != nil {
			return fail(&apiError{errorExec, err})
		}
	}
	if names == nil {
		names = []string{}
	}
	if limit > 0 && len(names) > limit {
		names = names[:limit]
		warnings = warnings.Add(errTruncated)
	}
	return apiResult{data: names, warnings: warnings}
}

// labelValues lists the values of the label in the path, of the series
// matching match[] if given, between start and end, at most limit. A name
// may be given in Prometheus's U__ escaping for names that are not valid
// in a URL path segment.
func (a *API) labelValues(r *http.Request) apiResult {
	name := r.PathValue("name")
	if strings.HasPrefix(name, "U__") {
		name = model.UnescapeName(name, model.ValueEncodingEscaping)
	}
	if !model.UTF8Validation.IsValidLabelName(name) {
		return fail(badData(fmt.Errorf("invalid label name: %q", name)))
	}
	limit, start, end, sets, apiErr := a.labelParams(r)
	if apiErr != nil {
		return fail(apiErr)
	}
	q, err := a.queryable.Querier(timestamp.FromTime(start), timestamp.FromTime(end))
	if err != nil {
		return fail(&apiError{errorExec, err})
	}
	defer func() { _ = q.Close() }()

	ctx := r.Context()
	hints := &storage.LabelHints{Limit: hintLimit(limit)}
	var (
		vals     []string
		warnings annotations.Annotations
	)
	if len(sets) > 1 {
		union := map[string]struct{}{}
		for _, ms := range sets {
			vs, ws, err := q.LabelValues(ctx, name, hints, ms...)
			if err != nil {
				return fail(&apiError{errorExec, err})
			}
			warnings = warnings.Merge(ws)
			for _, v := range vs {
				union[v] = struct{}{}
			}
		}
		vals = make([]string, 0, len(union))
		for v := range union {
			vals = append(vals, v)
		}
	} else {
		var ms []*labels.Matcher
		if len(sets) == 1 {
			ms = sets[0]
		}
		vals, warnings, err = q.LabelValues(ctx, name, hints, ms...)
		if err != nil {
			return fail(&apiError{errorExec, err})
		}
		if vals == nil {
			vals = []string{}
		}
	}
	slices.Sort(vals)
	if limit > 0 && len(vals) > limit {
		vals = vals[:limit]
		warnings = warnings.Add(errTruncated)
	}
	return apiResult{data: vals, warnings: warnings}
}

// labelParams parses the parameters /labels and /label/<name>/values share:
// limit, start, end and the optional match[].
func (a *API) labelParams(r *http.Request) (limit int, start, end time.Time, sets [][]*labels.Matcher, apiErr *apiError) {
	limit, err := parseLimit(r.FormValue("limit"))
	if err != nil {
		return 0, start, end, nil, invalidParam(err, "limit")
	}
	if start, err = parseTimeParam(r, "start", minTime); err != nil {
		return 0, start, end, nil, invalidParam(err, "start")
	}
	if end, err = parseTimeParam(r, "end", maxTime); err != nil {
		return 0, start, end, nil, invalidParam(err, "end")
	}
	if sets, err = parseMatchers(a.parser, r.Form["match[]"]); err != nil {
		return 0, start, end, nil, badData(err)
	}
	return limit, start, end, sets, nil
}
