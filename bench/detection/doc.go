// Package detection measures how well spanwatch's regression gate tells
// regressed deploys from unchanged ones, next to the recipe's rule, on
// simulated traffic with known ground truth.
//
// A run draws per-request latencies and errors for a baseline and a
// candidate and aggregates them exactly as spanwatch stores them: per
// request into spanwatch's default classic buckets and into native
// histograms at schema 3. Requests arrive as a Poisson process, so the
// bucket counts of a step are independent Poisson variables with means
// rate × step × bucket probability; the simulator draws those counts
// directly, on the common refinement of both bucketings (Grid), which is
// exact for i.i.d. requests and makes both histograms count the same
// requests. Native histograms reach the statistics the way internal/gate
// reads them from a Prometheus query (populated buckets only, as upper
// edges), classic buckets as every le bucket.
//
// Three methods decide on the same draws: the gate on native histograms,
// the gate on classic buckets (both via regress.CompareService at every
// look, with alpha spending over the planned looks and the gate's stopping
// rule), and the recipe's rule (P95 from histogram_quantile over the
// classic buckets after 5 minutes, fail above +20 %; no data passes).
//
// Two more columns are a what-if: the same findings under a stricter pass
// rule (StrictVerdict), written to measure how many missed regressions an
// earlier pass rule let through. The gate has since adopted that rule, so
// the columns equal its own and check that both agree.
//
// Every table but one stores spanwatch's default classic buckets; the
// recipe table models a service that stores only the recipe's 12 classic
// buckets (RecipeBounds) and no native histograms, and runs the gate and
// the recipe's rule on those. A Grid can count requests into several
// classic bucketings at once; RunAll runs each cell on the grid of that
// cell's bucketing alone, so that its draws do not depend on the other
// tables.
//
// Canary mode compares both versions in the same window from the deploy
// on. Offset mode compares the service now with itself an hour (or a day)
// earlier under a daily cycle of latency and traffic, with no change.
//
// The deployment table (RolloutCell) simulates rollouts instead: a canary,
// rolling updates and a switch, the previous and the new version drawn per
// step from before first-seen on. It scores the automatic verdict of each
// deployment (WatchEvent: same-window looks while the previous version
// serves, then before-after looks via regress.CompareServiceShifted, one
// α-spending plan per deployment) next to today's manual gate started after
// the rollout, on the same draws.
//
// cmd/detection prints the matrix; the tests run a reduced version.
package detection
