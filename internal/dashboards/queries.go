package dashboards

import (
	"fmt"
	"strconv"

	"github.com/spanwatch/spanwatch/internal/spanmetrics"
)

// queries renders the dashboard's PromQL for one set of names. Every
// selector is restricted to the service and versions picked by the
// dashboard's variables; range vectors use $__rate_interval.
type queries struct {
	calls, buckets string
}

func newQueries(n *spanmetrics.Names) queries {
	return queries{calls: n.Calls, buckets: n.Duration + "_bucket"}
}

// sel is the label matcher list shared by all panel queries.
func (queries) sel() string {
	return fmt.Sprintf(`%s="$%s", %s=~"$%s"`, labelService, VarService, labelVersion, VarVersion)
}

func (q queries) serviceValues() string {
	return fmt.Sprintf("label_values(%s, %s)", q.calls, labelService)
}

func (q queries) versionValues() string {
	return fmt.Sprintf(`label_values(%s{%s="$%s"}, %s)`, q.calls, labelService, VarService, labelVersion)
}

// rate is calls per second by label.
func (q queries) rate(by string) string {
	return fmt.Sprintf("sum by (%s) (rate(%s{%s}[$__rate_interval]))", by, q.calls, q.sel())
}

// errorRatio is the share of error calls by label. The division is guarded:
// groups with calls but no errors give 0 instead of no series, and groups
// without calls give no series instead of NaN.
func (q queries) errorRatio(by string) string {
	errs := fmt.Sprintf(`sum by (%s) (rate(%s{%s, %s="%s"}[$__rate_interval]))`, by, q.calls, q.sel(), labelStatusCode, statusError)
	all := q.rate(by)
	return fmt.Sprintf("(%s or 0 * %s) / (%s > 0)", errs, all, all)
}

// quantile is histogram_quantile over the classic buckets by label.
func (q queries) quantile(phi float64, by string) string {
	return fmt.Sprintf("histogram_quantile(%s, sum by (le, %s) (rate(%s{%s}[$__rate_interval])))",
		strconv.FormatFloat(phi, 'f', 2, 64), by, q.buckets, q.sel())
}

// heatmap is the number of spans per bucket and interval.
func (q queries) heatmap() string {
	return fmt.Sprintf("sum by (le) (increase(%s{%s}[$__rate_interval]))", q.buckets, q.sel())
}
