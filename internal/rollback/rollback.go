package rollback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
)

// KindDeployment is the Kind of every Target: Deployments
// are the only workloads spanwatch rolls back.
const KindDeployment = "Deployment"

// Annotations the deployment controller keeps on Deployments and ReplicaSets
// (k8s.io/kubectl/pkg/util/deployment).
const (
	revisionAnnotation        = "deployment.kubernetes.io/revision"
	revisionHistoryAnnotation = "deployment.kubernetes.io/revision-history"
	desiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas"
	maxReplicasAnnotation     = "deployment.kubernetes.io/max-replicas"

	// fieldManager names spanwatch in the Deployment's managedFields.
	fieldManager = "spanwatch-gate"
)

// annotationsToSkip lists the annotations that stay as they are on
// the Deployment instead of being copied from the ReplicaSet (kubectl's
// annotationsToSkip, same set).
var annotationsToSkip = map[string]bool{
	corev1.LastAppliedConfigAnnotation: true,
	appsv1.DeprecatedRollbackTo:        true,
	revisionAnnotation:                 true,
	revisionHistoryAnnotation:          true,
	desiredReplicasAnnotation:          true,
	maxReplicasAnnotation:              true,
}

// Errors a rollback returns, wrapped with the Deployment and namespace.
var (
	// ErrTarget: the --rollback reference or the namespace is malformed.
	ErrTarget = errors.New("invalid rollback target")
	// ErrNoPreviousRevision: the Deployment's ReplicaSet history holds
	// no revision older than the current one.
	ErrNoPreviousRevision = errors.New("no previous revision to roll back to")
	// ErrPaused: the Deployment is paused; kubectl refuses too.
	ErrPaused = errors.New("deployment is paused")
	// ErrRevisionMoved: Target.ExpectRevision is set and the
	// Deployment is no longer at that revision (someone deployed or rolled
	// back in the meantime), so undoing "the last change" would undo theirs.
	ErrRevisionMoved = errors.New("deployment revision changed")
	// ErrForbidden: the API server denied a request (RBAC). The
	// wrapping PermissionError says which verb and resource.
	ErrForbidden = errors.New("forbidden")
)

// PermissionError reports an RBAC denial together with the
// permission the rollback needs. It matches ErrForbidden with
// errors.Is and unwraps to the API server's error.
type PermissionError struct {
	Target   Target
	Verb     string // "get", "list" or "patch"
	Resource string // "deployments" or "replicasets", API group "apps"
	Err      error  // the API server's error
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("%s: forbidden: the rollback needs RBAC permission to %s %s (API group \"apps\") in namespace %q; see the Role in docs/gate.md: %v",
		e.Target, e.Verb, e.Resource, e.Target.Namespace, e.Err)
}

// Is makes errors.Is(err, ErrForbidden) true.
func (e *PermissionError) Is(target error) bool { return target == ErrForbidden }

// Unwrap returns the API server's error.
func (e *PermissionError) Unwrap() error { return e.Err }

// Target names the workload `--rollback` rolls back.
type Target struct {
	Kind      string // always KindDeployment
	Name      string
	Namespace string

	// ExpectRevision, when > 0, makes Rollback refuse (ErrRevisionMoved)
	// unless the Deployment's current revision is still this one. The gate can
	// record CurrentRevision when it starts so that a deploy or rollback made
	// by someone else while it waited is not undone. 0 means no check, which
	// is what kubectl does.
	ExpectRevision int64
}

// String returns "deployment/NAME in namespace NS".
func (t Target) String() string {
	return fmt.Sprintf("deployment/%s in namespace %s", t.Name, t.Namespace)
}

// targetKinds are the spellings of the resource kubectl accepts and we do.
var targetKinds = map[string]bool{"deployment": true, "deploy": true, "deployments": true}

// ParseTarget parses the --rollback value "deployment/NAME" (also
// "deploy/NAME" and "deployments/NAME", the kind case-insensitive as in
// kubectl) and the --namespace value. The namespace is required; see
// DefaultNamespace for kubectl's default.
func ParseTarget(ref, namespace string) (Target, error) {
	kind, name, ok := strings.Cut(strings.TrimSpace(ref), "/")
	if !ok || !targetKinds[strings.ToLower(kind)] {
		return Target{}, fmt.Errorf("%w %q: want deployment/NAME (or deploy/NAME, deployments/NAME); only Deployments can be rolled back", ErrTarget, ref)
	}
	if name == "" {
		return Target{}, fmt.Errorf("%w %q: the Deployment name is empty", ErrTarget, ref)
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return Target{}, fmt.Errorf("%w %q: %q is not a valid Deployment name: %s", ErrTarget, ref, name, strings.Join(errs, "; "))
	}
	if namespace == "" {
		return Target{}, fmt.Errorf("%w %q: the namespace is empty (set --namespace)", ErrTarget, ref)
	}
	if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
		return Target{}, fmt.Errorf("%w: %q is not a valid namespace: %s", ErrTarget, namespace, strings.Join(errs, "; "))
	}
	return Target{Kind: KindDeployment, Name: name, Namespace: namespace}, nil
}

// Result says what a rollback did or, in a dry run, would do.
type Result struct {
	Target Target
	DryRun bool

	// FromRevision is the current revision, ToRevision the one restored.
	FromRevision, ToRevision int64
	// Changed is false when the Deployment's pod template already equals
	// revision ToRevision's, so there was nothing to patch. In a dry run it
	// says whether the patch would change anything.
	Changed bool
	// Diff is a human-readable summary of the change, one line per item:
	// images per container, environment variables, other container and pod
	// fields, template labels and annotations, Deployment annotations.
	// Empty when !Changed.
	Diff string
}

// String is the one-paragraph summary the gate prints after a rollback.
func (r Result) String() string {
	var b strings.Builder
	switch {
	case !r.Changed:
		fmt.Fprintf(&b, "%s: skipped rollback (current template already matches revision %d)", r.Target, r.ToRevision)
	case r.DryRun:
		fmt.Fprintf(&b, "%s: dry run: would roll back from revision %d to revision %d", r.Target, r.FromRevision, r.ToRevision)
	default:
		fmt.Fprintf(&b, "%s: rolled back from revision %d to revision %d", r.Target, r.FromRevision, r.ToRevision)
	}
	if r.Changed && r.Diff != "" {
		for line := range strings.SplitSeq(strings.TrimRight(r.Diff, "\n"), "\n") {
			b.WriteString("\n  ")
			b.WriteString(line)
		}
	}
	return b.String()
}

// Rollbacker rolls Deployments back through the Kubernetes API.
type Rollbacker struct {
	client kubernetes.Interface
	logger *slog.Logger
}

// New returns a Rollbacker using client (see NewKubeClient; tests
// pass k8s.io/client-go/kubernetes/fake). A nil logger discards logs.
func New(client kubernetes.Interface, logger *slog.Logger) *Rollbacker {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Rollbacker{client: client, logger: logger.With("component", "rollback")}
}

// revisionHistory is a Deployment with its current and previous ReplicaSets.
type revisionHistory struct {
	deployment        *appsv1.Deployment
	current, previous *appsv1.ReplicaSet
	currentRevision   int64 // -1 when current is nil
	previousRevision  int64 // -1 when previous is nil
}

// CurrentRevision returns the Deployment's current revision: the highest
// deployment.kubernetes.io/revision among the ReplicaSets it controls (what
// `kubectl rollout history` lists last). The gate can store it in
// Target.ExpectRevision before it waits.
func (r *Rollbacker) CurrentRevision(ctx context.Context, t Target) (int64, error) {
	h, err := r.history(ctx, t)
	if err != nil {
		return 0, err
	}
	if h.current == nil {
		return 0, fmt.Errorf("%s: %w: no ReplicaSets controlled by it were found", t, ErrNoPreviousRevision)
	}
	return h.currentRevision, nil
}

// Rollback restores the pod template of the revision before the current
// one, as `kubectl rollout undo deployment/NAME` does: it refuses a paused
// Deployment, skips (Changed false) when the template already matches, and
// otherwise replaces spec.template with the previous ReplicaSet's template
// (minus its pod-template-hash label) and the Deployment's annotations with
// that ReplicaSet's, keeping the controller's revision annotations and
// kubectl.kubernetes.io/last-applied-configuration. With dryRun it computes
// the result and the diff and patches nothing.
func (r *Rollbacker) Rollback(ctx context.Context, t Target, dryRun bool) (Result, error) {
	res := Result{Target: t, DryRun: dryRun}
	h, err := r.history(ctx, t)
	if err != nil {
		return res, err
	}
	d := h.deployment
	if h.current == nil {
		return res, fmt.Errorf("%s: %w: no ReplicaSets controlled by it were found (selector %s)",
			t, ErrNoPreviousRevision, metav1.FormatLabelSelector(d.Spec.Selector))
	}
	res.FromRevision = h.currentRevision
	if h.previous == nil {
		return res, fmt.Errorf("%s: %w: only revision %d is recorded (%s)",
			t, ErrNoPreviousRevision, h.currentRevision, historyLimit(d))
	}
	res.ToRevision = h.previousRevision
	if t.ExpectRevision > 0 && h.currentRevision != t.ExpectRevision {
		return res, fmt.Errorf("%s: %w: it is at revision %d, the gate evaluated revision %d; not rolling back over someone else's change",
			t, ErrRevisionMoved, h.currentRevision, t.ExpectRevision)
	}
	// kubectl lets a client-side dry run through on a paused Deployment; we
	// refuse both so that a dry run predicts the real run.
	if d.Spec.Paused {
		return res, fmt.Errorf("%s: %w: resume it first with 'kubectl rollout resume deployment/%s -n %s'",
			t, ErrPaused, t.Name, t.Namespace)
	}
	if d.Status.ObservedGeneration < d.Generation {
		r.logger.Warn("the deployment controller has not observed the Deployment's latest spec yet; the revision history may lag",
			"deployment", t.Name, "namespace", t.Namespace,
			"generation", d.Generation, "observed_generation", d.Status.ObservedGeneration)
	}

	template := h.previous.Spec.Template.DeepCopy()
	delete(template.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	if equalIgnoreHash(template, &d.Spec.Template) {
		r.logger.Info("skipped rollback (current template already matches revision "+strconv.FormatInt(h.previousRevision, 10)+")",
			"deployment", t.Name, "namespace", t.Namespace, "replicaset", h.previous.Name)
		return res, nil
	}
	annotations := restoredAnnotations(d.Annotations, h.previous.Annotations)
	res.Changed = true
	res.Diff = templateDiff(&d.Spec.Template, template, d.Annotations, annotations)

	if dryRun {
		r.logger.Info("dry run: would roll back", "deployment", t.Name, "namespace", t.Namespace,
			"from_revision", res.FromRevision, "to_revision", res.ToRevision, "replicaset", h.previous.Name)
		return res, nil
	}
	patch, err := templatePatch(template, annotations)
	if err != nil {
		return res, fmt.Errorf("%s: building the patch to restore revision %d: %w", t, res.ToRevision, err)
	}
	_, err = r.client.AppsV1().Deployments(t.Namespace).Patch(ctx, t.Name, types.JSONPatchType, patch,
		metav1.PatchOptions{FieldManager: fieldManager})
	if err != nil {
		return res, apiError(t, "patch", "deployments", fmt.Sprintf("restoring revision %d", res.ToRevision), err)
	}
	r.logger.Info("rolled back", "deployment", t.Name, "namespace", t.Namespace,
		"from_revision", res.FromRevision, "to_revision", res.ToRevision, "replicaset", h.previous.Name)
	return res, nil
}

// history reads the Deployment and finds its two newest ReplicaSets by
// revision, as kubectl's deploymentRevision does for --to-revision=0.
func (r *Rollbacker) history(ctx context.Context, t Target) (*revisionHistory, error) {
	if r.client == nil {
		return nil, fmt.Errorf("%s: no Kubernetes client", t)
	}
	if t.Name == "" || t.Namespace == "" {
		return nil, fmt.Errorf("%w: name and namespace are required (got %q)", ErrTarget, t.String())
	}
	if t.Kind != "" && t.Kind != KindDeployment {
		return nil, fmt.Errorf("%w: kind %q: only Deployments can be rolled back", ErrTarget, t.Kind)
	}
	d, err := r.client.AppsV1().Deployments(t.Namespace).Get(ctx, t.Name, metav1.GetOptions{})
	if err != nil {
		return nil, apiError(t, "get", "deployments", "reading the Deployment", err)
	}
	rss, err := r.ownedReplicaSets(ctx, t, d)
	if err != nil {
		return nil, err
	}
	h := &revisionHistory{deployment: d, currentRevision: -1, previousRevision: -1}
	for _, rs := range rss {
		v, err := revisionOf(rs)
		if err != nil {
			// kubectl skips a ReplicaSet whose revision does not parse.
			r.logger.Warn("ignoring ReplicaSet with an unparsable revision annotation",
				"replicaset", rs.Name, "namespace", t.Namespace, "err", err)
			continue
		}
		switch {
		case v > h.currentRevision:
			h.previous, h.previousRevision = h.current, h.currentRevision
			h.current, h.currentRevision = rs, v
		case v > h.previousRevision:
			h.previous, h.previousRevision = rs, v
		}
	}
	return h, nil
}

// ownedReplicaSets lists the ReplicaSets matching the Deployment's selector
// and keeps those whose controller ownerReference is the Deployment
// (kubectl's deploymentutil.GetAllReplicaSets). ReplicaSets of other
// Deployments with overlapping labels, and orphans, are ignored.
func (r *Rollbacker) ownedReplicaSets(ctx context.Context, t Target, d *appsv1.Deployment) ([]*appsv1.ReplicaSet, error) {
	selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("%s: invalid spec.selector: %w", t, err)
	}
	if selector.Empty() {
		// An empty selector would match every ReplicaSet in the namespace;
		// apps/v1 rejects it, so this is a malformed object.
		return nil, fmt.Errorf("%s: spec.selector is empty", t)
	}
	list, err := r.client.AppsV1().ReplicaSets(t.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return nil, apiError(t, "list", "replicasets", "listing its ReplicaSets", err)
	}
	owned := make([]*appsv1.ReplicaSet, 0, len(list.Items))
	for i := range list.Items {
		rs := &list.Items[i]
		if metav1.IsControlledBy(rs, d) {
			owned = append(owned, rs)
		}
	}
	return owned, nil
}

// revisionOf reads a ReplicaSet's revision; a missing annotation is
// revision 0, as in kubectl.
func revisionOf(rs *appsv1.ReplicaSet) (int64, error) {
	v, ok := rs.Annotations[revisionAnnotation]
	if !ok {
		return 0, nil
	}
	return strconv.ParseInt(v, 10, 64)
}

// historyLimit explains why the history may be short.
func historyLimit(d *appsv1.Deployment) string {
	if d.Spec.RevisionHistoryLimit == nil {
		return "no older ReplicaSet is left; was this the Deployment's first rollout?"
	}
	return fmt.Sprintf("no older ReplicaSet is left; spec.revisionHistoryLimit is %d", *d.Spec.RevisionHistoryLimit)
}

// equalIgnoreHash compares pod templates ignoring the
// pod-template-hash label, as kubectl's equalIgnoreHash.
func equalIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	delete(b.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	return apiequality.Semantic.DeepEqual(a, b)
}

// restoredAnnotations computes the Deployment's annotations after the
// rollback: the skipped ones from the Deployment, all others from the
// ReplicaSet (kubectl's rule; e.g. kubernetes.io/change-cause follows the
// revision, annotations added to the Deployment since then are dropped).
func restoredAnnotations(deployment, replicaSet map[string]string) map[string]string {
	out := map[string]string{}
	for k := range annotationsToSkip {
		if v, ok := deployment[k]; ok {
			out[k] = v
		}
	}
	for k, v := range replicaSet {
		if !annotationsToSkip[k] {
			out[k] = v
		}
	}
	return out
}

// templatePatch is kubectl's getDeploymentPatch: a JSON patch replacing
// spec.template and metadata.annotations. It uses "add" for the
// annotations, which JSON patch defines as replace when the member exists
// and create when it does not ("replace" fails on a Deployment that has no
// annotations yet).
func templatePatch(template *corev1.PodTemplateSpec, annotations map[string]string) ([]byte, error) {
	return json.Marshal([]map[string]any{
		{"op": "replace", "path": "/spec/template", "value": template},
		{"op": "add", "path": "/metadata/annotations", "value": annotations},
	})
}

// apiError wraps an API error with the target and, for RBAC and
// authentication failures, what to fix.
func apiError(t Target, verb, resource, doing string, err error) error {
	switch {
	case apierrors.IsForbidden(err):
		return &PermissionError{Target: t, Verb: verb, Resource: resource, Err: err}
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s: %s: the API server rejected the credentials (check --kubeconfig or the pod's service account token): %w", t, doing, err)
	case apierrors.IsNotFound(err) && resource == "deployments":
		return fmt.Errorf("%s: Deployment not found (check --rollback and --namespace): %w", t, err)
	case apierrors.IsConflict(err):
		return fmt.Errorf("%s: %s: the Deployment changed while rolling back; retry: %w", t, doing, err)
	default:
		return fmt.Errorf("%s: %s: %w", t, doing, err)
	}
}

// Prepared is a rollback checked before the gate waits: the target exists,
// the credentials may read it, and its current revision is recorded, so
// that Undo refuses if someone deployed meanwhile (it would undo their
// change). It implements gate.Rollback.
type Prepared struct {
	r      *Rollbacker
	target Target
}

// Prepare checks t and records its current revision in
// t.ExpectRevision.
func (r *Rollbacker) Prepare(ctx context.Context, t Target) (*Prepared, error) {
	rev, err := r.CurrentRevision(ctx, t)
	if err != nil {
		return nil, err
	}
	t.ExpectRevision = rev
	return &Prepared{r: r, target: t}, nil
}

// Undo restores the previous revision, as `kubectl rollout undo` does;
// with dryRun it only describes the change. It returns what it did in
// words.
func (p *Prepared) Undo(ctx context.Context, dryRun bool) (string, error) {
	res, err := p.r.Rollback(ctx, p.target, dryRun)
	if err != nil {
		return "", err
	}
	return res.String(), nil
}
