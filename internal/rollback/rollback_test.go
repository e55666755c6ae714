package rollback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const (
	rbNamespace = "production"
	rbName      = "payment-service"
	rbImage     = "ghcr.io/acme/payment-service:"
)

// rbTemplate is the pod template of one revision, as the ReplicaSet stores
// it (with the pod-template-hash label when hash != "").
func rbTemplate(version, hash string) corev1.PodTemplateSpec {
	labels := map[string]string{"app": rbName, "version": version}
	if hash != "" {
		labels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  rbName,
				Image: rbImage + version,
				Env: []corev1.EnvVar{
					{Name: "SERVICE_VERSION", Value: version},
					{Name: "DB_PASSWORD", Value: "secret-" + version},
				},
			}},
		},
	}
}

func rbDeployment(name string, uid types.UID, revision int64, tmpl corev1.PodTemplateSpec) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: rbNamespace, UID: uid, Generation: 4,
			Annotations: map[string]string{
				revisionAnnotation:                 fmt.Sprint(revision),
				corev1.LastAppliedConfigAnnotation: `{"kind":"Deployment"}`,
				"kubernetes.io/change-cause":       "deploy v3",
				"team":                             "payments",
			},
		},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": rbName}},
			Template: tmpl,
		},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 4},
	}
}

func rbReplicaSet(name, namespace string, owner *appsv1.Deployment, revision int64, version string) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: namespace,
			Labels: map[string]string{"app": rbName, appsv1.DefaultDeploymentUniqueLabelKey: "h" + version},
			Annotations: map[string]string{
				revisionAnnotation:           fmt.Sprint(revision),
				desiredReplicasAnnotation:    "3",
				maxReplicasAnnotation:        "4",
				"kubernetes.io/change-cause": "deploy " + version,
			},
		},
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": rbName}},
			Template: rbTemplate(version, "h"+version),
		},
	}
	if owner != nil {
		rs.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(owner, appsv1.SchemeGroupVersion.WithKind("Deployment"))}
	}
	return rs
}

// rbObjects is the standard history: revisions 1, 2, 3 with images v1, v2,
// v3; the Deployment is at v3.
func rbObjects() (*appsv1.Deployment, []runtime.Object) {
	d := rbDeployment(rbName, "uid-payment", 3, rbTemplate("v3", ""))
	return d, []runtime.Object{
		d,
		rbReplicaSet(rbName+"-h1", rbNamespace, d, 1, "v1"),
		rbReplicaSet(rbName+"-h2", rbNamespace, d, 2, "v2"),
		rbReplicaSet(rbName+"-h3", rbNamespace, d, 3, "v3"),
	}
}

func rbTarget(t *testing.T) Target {
	t.Helper()
	target, err := ParseTarget("deployment/"+rbName, rbNamespace)
	require.NoError(t, err)
	return target
}

func rbGet(t *testing.T, c *fake.Clientset) *appsv1.Deployment {
	t.Helper()
	d, err := c.AppsV1().Deployments(rbNamespace).Get(context.Background(), rbName, metav1.GetOptions{})
	require.NoError(t, err)
	return d
}

func rbPatches(c *fake.Clientset) []k8stesting.PatchAction {
	var out []k8stesting.PatchAction
	for _, a := range c.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok {
			out = append(out, p)
		}
	}
	return out
}

func TestRollbackRestoresPreviousRevision(t *testing.T) {
	defer goleak.VerifyNone(t)
	_, objs := rbObjects()
	client := fake.NewClientset(objs...)

	res, err := New(client, nil).Rollback(context.Background(), rbTarget(t), false)
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.False(t, res.DryRun)
	require.Equal(t, int64(3), res.FromRevision)
	require.Equal(t, int64(2), res.ToRevision)
	require.Contains(t, res.Diff, "container payment-service: image "+rbImage+"v3 -> "+rbImage+"v2")

	// The patch reached the API: one JSON patch on the Deployment.
	patches := rbPatches(client)
	require.Len(t, patches, 1)
	require.Equal(t, types.JSONPatchType, patches[0].GetPatchType())
	require.Equal(t, rbName, patches[0].GetName())
	var ops []map[string]any
	require.NoError(t, json.Unmarshal(patches[0].GetPatch(), &ops))
	require.Len(t, ops, 2)
	require.Equal(t, "/spec/template", ops[0]["path"])
	require.Equal(t, "/metadata/annotations", ops[1]["path"])

	// The Deployment now carries revision 2's template, without the hash label.
	d := rbGet(t, client)
	want := rbTemplate("v2", "")
	require.Equal(t, want.Spec.Containers[0].Image, d.Spec.Template.Spec.Containers[0].Image)
	require.Equal(t, want.Labels, d.Spec.Template.Labels)
	require.Equal(t, want.Spec.Containers[0].Env, d.Spec.Template.Spec.Containers[0].Env)
	require.NotContains(t, d.Spec.Template.Labels, appsv1.DefaultDeploymentUniqueLabelKey)

	// Annotations as kubectl leaves them: the controller's and
	// last-applied-configuration kept, the others from the ReplicaSet;
	// the ReplicaSet's replica annotations are not copied.
	require.Equal(t, map[string]string{
		revisionAnnotation:                 "3",
		corev1.LastAppliedConfigAnnotation: `{"kind":"Deployment"}`,
		"kubernetes.io/change-cause":       "deploy v2",
	}, d.Annotations)
}

func TestRollbackDryRun(t *testing.T) {
	defer goleak.VerifyNone(t)
	before, objs := rbObjects()
	client := fake.NewClientset(objs...)

	res, err := New(client, nil).Rollback(context.Background(), rbTarget(t), true)
	require.NoError(t, err)
	require.True(t, res.DryRun)
	require.True(t, res.Changed)
	require.Equal(t, int64(3), res.FromRevision)
	require.Equal(t, int64(2), res.ToRevision)
	require.Equal(t, strings.Join([]string{
		"container payment-service: image " + rbImage + "v3 -> " + rbImage + "v2",
		"container payment-service: env DB_PASSWORD: value changed (value hidden)",
		`container payment-service: env SERVICE_VERSION: "v3" -> "v2"`,
		`pod label version: "v3" -> "v2"`,
		`deployment annotation kubernetes.io/change-cause: "deploy v3" -> "deploy v2"`,
		`deployment annotation team: "payments" -> (unset)`,
	}, "\n"), res.Diff)
	require.NotContains(t, res.Diff, "secret-")

	require.Empty(t, rbPatches(client), "a dry run must not patch")
	after := rbGet(t, client)
	require.Equal(t, before.Spec.Template, after.Spec.Template)
	require.Equal(t, before.Annotations, after.Annotations)

	require.Equal(t, "deployment/payment-service in namespace production: dry run: would roll back from revision 3 to revision 2\n"+
		"  container payment-service: image "+rbImage+"v3 -> "+rbImage+"v2\n"+
		"  container payment-service: env DB_PASSWORD: value changed (value hidden)\n"+
		"  container payment-service: env SERVICE_VERSION: \"v3\" -> \"v2\"\n"+
		"  pod label version: \"v3\" -> \"v2\"\n"+
		"  deployment annotation kubernetes.io/change-cause: \"deploy v3\" -> \"deploy v2\"\n"+
		"  deployment annotation team: \"payments\" -> (unset)", res.String())
}

func TestRollbackAlreadyMatches(t *testing.T) {
	defer goleak.VerifyNone(t)
	// Someone already set the template back to v2; the controller has not
	// renumbered the ReplicaSets yet, so revision 3 (v3) is still current.
	d, objs := rbObjects()
	d.Spec.Template = rbTemplate("v2", "")
	client := fake.NewClientset(objs...)

	for _, dryRun := range []bool{false, true} {
		res, err := New(client, nil).Rollback(context.Background(), rbTarget(t), dryRun)
		require.NoError(t, err)
		require.False(t, res.Changed)
		require.Empty(t, res.Diff)
		require.Equal(t, int64(2), res.ToRevision)
		require.Equal(t, "deployment/payment-service in namespace production: skipped rollback (current template already matches revision 2)", res.String())
	}
	require.Empty(t, rbPatches(client))
}

func TestRollbackIgnoresOtherReplicaSets(t *testing.T) {
	defer goleak.VerifyNone(t)
	d, objs := rbObjects()
	other := rbDeployment(rbName+"-canary", "uid-canary", 7, rbTemplate("v9", ""))
	objs = append(objs,
		other,
		// Same labels, higher revisions, but controlled by another Deployment.
		rbReplicaSet(rbName+"-canary-h8", rbNamespace, other, 6, "v8"),
		rbReplicaSet(rbName+"-canary-h9", rbNamespace, other, 7, "v9"),
		// An orphan with matching labels.
		rbReplicaSet(rbName+"-orphan", rbNamespace, nil, 5, "v5"),
		// The same name and owner UID in another namespace.
		rbReplicaSet(rbName+"-h4", "staging", d, 4, "v4"),
		// Owned (controller ref) but outside the selector: not listed.
		func() *appsv1.ReplicaSet {
			rs := rbReplicaSet(rbName+"-unlabelled", rbNamespace, d, 9, "v0")
			rs.Labels = map[string]string{"app": "something-else"}
			return rs
		}(),
	)
	client := fake.NewClientset(objs...)

	res, err := New(client, nil).Rollback(context.Background(), rbTarget(t), false)
	require.NoError(t, err)
	require.Equal(t, int64(3), res.FromRevision)
	require.Equal(t, int64(2), res.ToRevision)
	require.Equal(t, rbImage+"v2", rbGet(t, client).Spec.Template.Spec.Containers[0].Image)

	// The other Deployment is untouched.
	o, err := client.AppsV1().Deployments(rbNamespace).Get(context.Background(), other.Name, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, rbImage+"v9", o.Spec.Template.Spec.Containers[0].Image)
}

func TestRollbackHistoryOutOfOrder(t *testing.T) {
	defer goleak.VerifyNone(t)
	// After an earlier undo the controller renumbers the restored ReplicaSet:
	// v1 is revision 4 (current), v3 revision 3, v2 was revision 2.
	d := rbDeployment(rbName, "uid-payment", 4, rbTemplate("v1", ""))
	client := fake.NewClientset(d,
		rbReplicaSet(rbName+"-h3", rbNamespace, d, 3, "v3"),
		rbReplicaSet(rbName+"-h1", rbNamespace, d, 4, "v1"),
		rbReplicaSet(rbName+"-h2", rbNamespace, d, 2, "v2"),
	)
	rb := New(client, nil)
	rev, err := rb.CurrentRevision(context.Background(), rbTarget(t))
	require.NoError(t, err)
	require.Equal(t, int64(4), rev)
	res, err := rb.Rollback(context.Background(), rbTarget(t), false)
	require.NoError(t, err)
	require.Equal(t, int64(4), res.FromRevision)
	require.Equal(t, int64(3), res.ToRevision)
	require.Equal(t, rbImage+"v3", rbGet(t, client).Spec.Template.Spec.Containers[0].Image)
}

func TestRollbackErrors(t *testing.T) {
	defer goleak.VerifyNone(t)
	forbidden := func(verb, resource string) k8stesting.ReactionFunc {
		return func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: resource}, rbName,
				fmt.Errorf("User \"system:serviceaccount:ci:deployer\" cannot %s resource %q", verb, resource))
		}
	}
	tests := []struct {
		name    string
		setup   func(d *appsv1.Deployment, objs []runtime.Object) []runtime.Object
		react   func(c *fake.Clientset)
		target  func(t Target) Target
		dryRun  bool
		wantIs  error
		wantMsg []string
	}{
		{
			name: "only one revision",
			setup: func(d *appsv1.Deployment, _ []runtime.Object) []runtime.Object {
				limit := int32(0)
				d.Spec.RevisionHistoryLimit = &limit
				return []runtime.Object{d, rbReplicaSet(rbName+"-h3", rbNamespace, d, 3, "v3")}
			},
			wantIs:  ErrNoPreviousRevision,
			wantMsg: []string{"deployment/payment-service in namespace production", "only revision 3 is recorded", "revisionHistoryLimit is 0"},
		},
		{
			name:    "no replicasets",
			setup:   func(d *appsv1.Deployment, _ []runtime.Object) []runtime.Object { return []runtime.Object{d} },
			wantIs:  ErrNoPreviousRevision,
			wantMsg: []string{"deployment/payment-service in namespace production", "no ReplicaSets controlled by it", "app=payment-service"},
		},
		{
			name: "paused",
			setup: func(d *appsv1.Deployment, objs []runtime.Object) []runtime.Object {
				d.Spec.Paused = true
				return objs
			},
			wantIs:  ErrPaused,
			wantMsg: []string{"deployment/payment-service in namespace production", "kubectl rollout resume deployment/payment-service -n production"},
		},
		{
			name: "paused, dry run",
			setup: func(d *appsv1.Deployment, objs []runtime.Object) []runtime.Object {
				d.Spec.Paused = true
				return objs
			},
			dryRun: true,
			wantIs: ErrPaused,
		},
		{
			name:    "deployment not found",
			target:  func(t Target) Target { t.Name = "checkout"; return t },
			wantMsg: []string{"deployment/checkout in namespace production: Deployment not found", "--namespace"},
		},
		{
			name:    "revision moved while the gate waited",
			target:  func(t Target) Target { t.ExpectRevision = 2; return t },
			wantIs:  ErrRevisionMoved,
			wantMsg: []string{"it is at revision 3, the gate evaluated revision 2"},
		},
		{
			name:    "get forbidden",
			react:   func(c *fake.Clientset) { c.PrependReactor("get", "deployments", forbidden("get", "deployments")) },
			wantIs:  ErrForbidden,
			wantMsg: []string{"deployment/payment-service in namespace production: forbidden", "get deployments", `namespace "production"`},
		},
		{
			name:    "list forbidden",
			react:   func(c *fake.Clientset) { c.PrependReactor("list", "replicasets", forbidden("list", "replicasets")) },
			dryRun:  true,
			wantIs:  ErrForbidden,
			wantMsg: []string{"list replicasets"},
		},
		{
			name:    "patch forbidden",
			react:   func(c *fake.Clientset) { c.PrependReactor("patch", "deployments", forbidden("patch", "deployments")) },
			wantIs:  ErrForbidden,
			wantMsg: []string{"patch deployments", "cannot patch"},
		},
		{
			name:    "invalid target",
			target:  func(Target) Target { return Target{Name: rbName} },
			wantIs:  ErrTarget,
			wantMsg: []string{"name and namespace are required"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, objs := rbObjects()
			if tt.setup != nil {
				objs = tt.setup(d, objs)
			}
			client := fake.NewClientset(objs...)
			if tt.react != nil {
				tt.react(client)
			}
			target := rbTarget(t)
			if tt.target != nil {
				target = tt.target(target)
			}
			_, err := New(client, nil).Rollback(context.Background(), target, tt.dryRun)
			require.Error(t, err)
			if tt.wantIs != nil {
				require.ErrorIs(t, err, tt.wantIs)
			}
			for _, m := range tt.wantMsg {
				require.Contains(t, err.Error(), m)
			}
			if !tt.dryRun && !errors.Is(tt.wantIs, ErrForbidden) {
				require.Empty(t, rbPatches(client))
			}
		})
	}
}

func TestRollbackPermissionError(t *testing.T) {
	api := apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, rbName, errors.New("no"))
	err := apiError(Target{Kind: KindDeployment, Name: rbName, Namespace: rbNamespace}, "patch", "deployments", "restoring", api)
	var perr *PermissionError
	require.ErrorAs(t, err, &perr)
	require.Equal(t, "patch", perr.Verb)
	require.Equal(t, "deployments", perr.Resource)
	require.ErrorIs(t, err, ErrForbidden)
	require.True(t, apierrors.IsForbidden(err), "the API error stays reachable")
}

func TestParseRollbackTarget(t *testing.T) {
	tests := []struct {
		ref, namespace string
		want           Target
		wantErr        string
	}{
		{ref: "deployment/payment-service", namespace: "production", want: Target{Kind: "Deployment", Name: "payment-service", Namespace: "production"}},
		{ref: "deploy/payment-service", namespace: "production", want: Target{Kind: "Deployment", Name: "payment-service", Namespace: "production"}},
		{ref: "deployments/payment-service", namespace: "production", want: Target{Kind: "Deployment", Name: "payment-service", Namespace: "production"}},
		{ref: "Deployment/api.v2", namespace: "default", want: Target{Kind: "Deployment", Name: "api.v2", Namespace: "default"}},
		{ref: "payment-service", namespace: "production", wantErr: "want deployment/NAME (or deploy/NAME, deployments/NAME)"},
		{ref: "statefulset/db", namespace: "production", wantErr: "only Deployments can be rolled back"},
		{ref: "deployment.apps/payment-service", namespace: "production", wantErr: "want deployment/NAME"},
		{ref: "", namespace: "production", wantErr: "want deployment/NAME"},
		{ref: "deployment/", namespace: "production", wantErr: "the Deployment name is empty"},
		{ref: "deployment/Payment_Service", namespace: "production", wantErr: "not a valid Deployment name"},
		{ref: "deployment/a/b", namespace: "production", wantErr: "not a valid Deployment name"},
		{ref: "deployment/payment-service", namespace: "", wantErr: "set --namespace"},
		{ref: "deployment/payment-service", namespace: "Prod.EU", wantErr: "not a valid namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.ref+"@"+tt.namespace, func(t *testing.T) {
			got, err := ParseTarget(tt.ref, tt.namespace)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, ErrTarget)
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestRollbackDiff(t *testing.T) {
	cur := rbTemplate("v3", "")
	cur.Spec.Containers[0].Env = append(cur.Spec.Containers[0].Env,
		corev1.EnvVar{Name: "NEW_ROUTER", Value: "on"},
		corev1.EnvVar{Name: "REGION", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['region']"}}})
	cur.Spec.Containers = append(cur.Spec.Containers, corev1.Container{Name: "envoy", Image: "envoyproxy/envoy:v1.31"})
	cur.Spec.ServiceAccountName = "payment"
	cur.Annotations = map[string]string{"prometheus.io/scrape": "true"}

	next := rbTemplate("v2", "")
	next.Spec.Containers[0].Args = []string{"--pool=20"}
	next.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: rbImage + "migrate-v2"}}
	next.Spec.Containers[0].Env = append(next.Spec.Containers[0].Env,
		corev1.EnvVar{Name: "POOL", Value: strings.Repeat("x", 200)})

	got := templateDiff(&cur, &next, map[string]string{"a": "1"}, map[string]string{"a": "1"})
	want := []string{
		"init container migrate: added (image " + rbImage + "migrate-v2)",
		"container payment-service: image " + rbImage + "v3 -> " + rbImage + "v2",
		"container payment-service: env DB_PASSWORD: value changed (value hidden)",
		`container payment-service: env NEW_ROUTER: "on" -> (unset)`,
		`container payment-service: env POOL: (unset) -> "` + strings.Repeat("x", diffValueMax-1) + "…",
		`container payment-service: env REGION: from {"fieldRef":{"fieldPath":"metadata.labels['region']"}} -> (unset)`,
		`container payment-service: env SERVICE_VERSION: "v3" -> "v2"`,
		`container payment-service: args: (unset) -> ["--pool=20"]`,
		"container envoy: removed (image envoyproxy/envoy:v1.31)",
		`pod spec: serviceAccountName: "payment" -> (unset)`,
		`pod label version: "v3" -> "v2"`,
		`pod annotation prometheus.io/scrape: "true" -> (unset)`,
	}
	require.Equal(t, strings.Join(want, "\n"), got)

	// Only the order of variables differs.
	reordered := rbTemplate("v3", "")
	env := reordered.Spec.Containers[0].Env
	env[0], env[1] = env[1], env[0]
	require.Equal(t, "container payment-service: env: order changed",
		templateDiff(new(rbTemplate("v3", "")), &reordered, nil, nil))
}

func TestNewKubeClient(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "config")
	require.NoError(t, os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters:
- name: ci
  cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
users:
- name: deployer
  user: {token: "not-a-real-token"}
contexts:
- name: ci
  context: {cluster: ci, user: deployer, namespace: production}
- name: other
  context: {cluster: ci, user: deployer}
current-context: ci
`), 0o600))
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")

	t.Run("explicit kubeconfig", func(t *testing.T) {
		t.Setenv("KUBECONFIG", "")
		c, err := NewKubeClient(kubeconfig)
		require.NoError(t, err)
		require.NotNil(t, c)
		ns, err := DefaultNamespace(kubeconfig)
		require.NoError(t, err)
		require.Equal(t, "production", ns)
	})
	t.Run("KUBECONFIG", func(t *testing.T) {
		t.Setenv("KUBECONFIG", kubeconfig)
		c, err := NewKubeClient("")
		require.NoError(t, err)
		require.NotNil(t, c)
		ns, err := DefaultNamespace("")
		require.NoError(t, err)
		require.Equal(t, "production", ns)
	})
	t.Run("missing file", func(t *testing.T) {
		t.Setenv("KUBECONFIG", "")
		_, err := NewKubeClient(filepath.Join(dir, "nope"))
		require.ErrorContains(t, err, filepath.Join(dir, "nope"))
	})
	t.Run("in cluster", func(t *testing.T) {
		t.Setenv("KUBECONFIG", "")
		t.Setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
		t.Setenv("KUBERNETES_SERVICE_PORT", "443")
		t.Setenv("POD_NAMESPACE", "ci")
		// No service account token in the test environment: in-cluster
		// loading is tried and its error reported.
		if _, err := os.Stat("/var/run/secrets/kubernetes.io/serviceaccount/token"); err == nil {
			t.Skip("running in a pod")
		}
		_, err := NewKubeClient("")
		require.ErrorContains(t, err, "in-cluster")
		ns, err := DefaultNamespace("")
		require.NoError(t, err)
		require.Equal(t, "ci", ns)
	})
}
