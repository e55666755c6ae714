package api

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
)

// metadataJSON is one entry of /metadata, with Prometheus's field order.
type metadataJSON struct {
	Type string `json:"type"`
	Unit string `json:"unit"`
	Help string `json:"help"`
}

// metricMetadata serves the metadata of the metrics spanwatch produces:
// limit (metrics; negative: all), limit_per_metric (entries per metric;
// zero or negative: all), metric (one family). Duplicate entries collapse.
// Unlike Prometheus, which picks metrics in map order, the limit keeps the
// first metrics by name.
func (a *API) metricMetadata(r *http.Request) apiResult {
	limit := -1
	if s := r.FormValue("limit"); s != "" {
		var err error
		if limit, err = strconv.Atoi(s); err != nil {
			return fail(badData(errors.New("limit must be a number")))
		}
	}
	limitPerMetric := -1
	if s := r.FormValue("limit_per_metric"); s != "" {
		var err error
		if limitPerMetric, err = strconv.Atoi(s); err != nil {
			return fail(badData(errors.New("limit_per_metric must be a number")))
		}
	}
	metric := r.FormValue("metric")

	byMetric := map[string][]metadataJSON{}
	for _, m := range a.metadata() {
		if metric != "" && m.Metric != metric {
			continue
		}
		entries := byMetric[m.Metric]
		if limitPerMetric > 0 && len(entries) >= limitPerMetric {
			continue
		}
		e := metadataJSON{Type: m.Type, Unit: m.Unit, Help: m.Help}
		if !slices.Contains(entries, e) {
			byMetric[m.Metric] = append(entries, e)
		}
	}
	if limit >= 0 && len(byMetric) > limit {
		names := make([]string, 0, len(byMetric))
		for name := range byMetric {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names[limit:] {
			delete(byMetric, name)
		}
	}
	return apiResult{data: byMetric}
}

// serveBuildInfo serves the build information.
func (a *API) serveBuildInfo(*http.Request) apiResult {
	return apiResult{data: a.buildInfo}
}
