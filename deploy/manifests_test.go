package deploy

// Reading manifests: every YAML document is decoded strictly (an unknown or
// duplicate field is an error) into its k8s.io/api type, or, for the custom
// resources of Argo Rollouts, Flagger and the Prometheus Operator, into the
// local structs of crds_test.go that spell out the fields the examples use.
// A kustomization is rendered here with the features the manifests use
// (resources, namespace, images, strategic-merge patches); where a recent
// kustomize is installed, its output must agree.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/spanwatch/spanwatch/internal/testutil"
)

// object is one decoded manifest document.
type object struct {
	file string
	gvk  schema.GroupVersionKind
	obj  runtime.Object // a k8s.io/api type, or a CRD struct of crds_test.go
}

func (o *object) meta() metav1.Object {
	m, err := meta.Accessor(o.obj)
	if err != nil {
		panic(fmt.Sprintf("%s: %v", o.file, err))
	}
	return m
}

// key identifies an object as kustomize does: kind, namespace, name.
func (o *object) key() string {
	return o.gvk.Kind + "/" + o.meta().GetNamespace() + "/" + o.meta().GetName()
}

// crdTypes are the custom resources the examples use, by group/version and
// kind, with a constructor of the local struct they decode into.
var crdTypes = map[schema.GroupVersionKind]func() runtime.Object{
	{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"}: func() runtime.Object { return &serviceMonitor{} },
	{Group: "argoproj.io", Version: "v1alpha1", Kind: "AnalysisTemplate"}:   func() runtime.Object { return &analysisTemplate{} },
	{Group: "argoproj.io", Version: "v1alpha1", Kind: "Rollout"}:            func() runtime.Object { return &rollout{} },
	{Group: "flagger.app", Version: "v1beta1", Kind: "Canary"}:              func() runtime.Object { return &canary{} },
}

// newTyped returns an empty value of the type of gvk.
func newTyped(gvk schema.GroupVersionKind) (runtime.Object, error) {
	if f, ok := crdTypes[gvk]; ok {
		return f(), nil
	}
	return scheme.Scheme.New(gvk)
}

// splitDocs returns the non-empty YAML documents of data.
func splitDocs(t *testing.T, data []byte, file string) [][]byte {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		require.NoError(t, err, file)
		var v any
		require.NoError(t, utilyaml.Unmarshal(doc, &v), file)
		if v != nil { // a document of comments only
			docs = append(docs, doc)
		}
	}
}

// decodeDoc decodes one document strictly into its type.
func decodeDoc(t *testing.T, doc []byte, file string) *object {
	t.Helper()
	var tm metav1.TypeMeta
	require.NoError(t, utilyaml.Unmarshal(doc, &tm), file)
	gv, err := schema.ParseGroupVersion(tm.APIVersion)
	require.NoError(t, err, file)
	gvk := gv.WithKind(tm.Kind)
	obj, err := newTyped(gvk)
	require.NoError(t, err, "%s: %s is neither a Kubernetes type nor a custom resource these tests know", file, gvk)
	require.NoError(t, utilyaml.UnmarshalStrict(doc, obj), "%s: %s", file, gvk.Kind)
	o := &object{file: file, gvk: gvk, obj: obj}
	require.NotEmpty(t, o.meta().GetName(), "%s: %s without a name", file, gvk.Kind)
	return o
}

// readManifests decodes every document of a file.
func readManifests(t *testing.T, file string) []*object {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	var out []*object
	for _, doc := range splitDocs(t, data, file) {
		out = append(out, decodeDoc(t, doc, file))
	}
	return out
}

// kustomization is the subset of kustomize's Kustomization the manifests
// use; decoding it strictly makes any other field an error, so that the
// renderer below never ignores what it does not implement.
type kustomization struct {
	APIVersion string        `json:"apiVersion"`
	Kind       string        `json:"kind"`
	Namespace  string        `json:"namespace,omitempty"`
	Resources  []string      `json:"resources,omitempty"`
	Images     []kustomImage `json:"images,omitempty"`
	Patches    []kustomPatch `json:"patches,omitempty"`
}

type kustomImage struct {
	Name    string `json:"name"`
	NewName string `json:"newName,omitempty"`
	NewTag  string `json:"newTag,omitempty"`
}

type kustomPatch struct {
	Path string `json:"path"`
}

// rendered is the output of a kustomization: its objects in order.
type rendered struct {
	dir  string
	objs []*object
}

func (r *rendered) all(kind string) []*object {
	var out []*object
	for _, o := range r.objs {
		if o.gvk.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// one returns the single object of kind and name.
func (r *rendered) one(t *testing.T, kind, name string) *object {
	t.Helper()
	var found []*object
	for _, o := range r.all(kind) {
		if o.meta().GetName() == name {
			found = append(found, o)
		}
	}
	require.Len(t, found, 1, "%s: want one %s %q", r.dir, kind, name)
	return found[0]
}

// render renders the kustomization in dir.
func render(t *testing.T, dir string) *rendered {
	t.Helper()
	file := filepath.Join(dir, "kustomization.yaml")
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	var k kustomization
	require.NoError(t, utilyaml.UnmarshalStrict(data, &k), file)
	require.Equal(t, "kustomize.config.k8s.io/v1beta1", k.APIVersion, file)
	require.Equal(t, "Kustomization", k.Kind, file)
	require.NotEmpty(t, k.Resources, file)

	out := &rendered{dir: dir}
	for _, res := range k.Resources {
		p := filepath.Join(dir, res)
		fi, err := os.Stat(p)
		require.NoError(t, err, "%s: resource %s", file, res)
		if fi.IsDir() {
			out.objs = append(out.objs, render(t, p).objs...)
			continue
		}
		out.objs = append(out.objs, readManifests(t, p)...)
	}
	seen := map[string]string{}
	for _, o := range out.objs {
		require.NotContains(t, seen, o.key(), "%s: %s is defined twice (%s, %s)", file, o.key(), seen[o.key()], o.file)
		seen[o.key()] = o.file
	}
	for _, p := range k.Patches {
		applyPatch(t, out, filepath.Join(dir, p.Path))
	}
	if k.Namespace != "" {
		setNamespace(t, out, k.Namespace)
	}
	for _, img := range k.Images {
		setImage(out, img)
	}
	return out
}

// applyPatch applies a strategic-merge patch file to the one object of the
// same kind and name, as kustomize does for a patch without a target.
func applyPatch(t *testing.T, r *rendered, file string) {
	t.Helper()
	patch := readManifests(t, file) // the patch itself decodes strictly
	require.Len(t, patch, 1, "%s: one object per patch file", file)
	p := patch[0]
	var targets []*object
	for _, o := range r.objs {
		if o.gvk == p.gvk && o.meta().GetName() == p.meta().GetName() {
			targets = append(targets, o)
		}
	}
	require.Len(t, targets, 1, "%s: the patch must target exactly one resource (%s %q)", file, p.gvk.Kind, p.meta().GetName())
	target := targets[0]
	_, isCRD := crdTypes[target.gvk]
	require.False(t, isCRD, "%s: strategic-merge patches need a Kubernetes type", file)

	orig, err := json.Marshal(target.obj)
	require.NoError(t, err)
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	patchJSON, err := utilyaml.ToJSON(raw)
	require.NoError(t, err)
	empty, err := newTyped(target.gvk)
	require.NoError(t, err)
	merged, err := strategicpatch.StrategicMergePatch(orig, patchJSON, empty)
	require.NoError(t, err, file)
	out, err := newTyped(target.gvk)
	require.NoError(t, err)
	dec := json.NewDecoder(bytes.NewReader(merged))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(out), file)
	target.obj = out
	target.file += " + " + filepath.Base(file)
}

// setNamespace sets the namespace of every object, and of the RoleBinding
// subjects that name one of the kustomization's ServiceAccounts.
func setNamespace(t *testing.T, r *rendered, ns string) {
	t.Helper()
	accounts := map[string]bool{}
	for _, o := range r.all("ServiceAccount") {
		accounts[o.meta().GetName()] = true
	}
	for _, o := range r.objs {
		o.meta().SetNamespace(ns)
		if rb, ok := o.obj.(*rbacv1.RoleBinding); ok {
			for i := range rb.Subjects {
				if s := &rb.Subjects[i]; s.Kind == rbacv1.ServiceAccountKind && accounts[s.Name] {
					s.Namespace = ns
				}
			}
		}
	}
}

// podSpecOf returns the pod spec of a workload, or nil.
func podSpecOf(o *object) *corev1.PodSpec {
	switch w := o.obj.(type) {
	case *appsv1.StatefulSet:
		return &w.Spec.Template.Spec
	case *appsv1.Deployment:
		return &w.Spec.Template.Spec
	case *batchv1.Job:
		return &w.Spec.Template.Spec
	case *rollout:
		return &w.Spec.Template.Spec
	}
	return nil
}

// imageName is an image reference without its tag or digest.
func imageName(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

func setImage(r *rendered, img kustomImage) {
	for _, o := range r.objs {
		spec := podSpecOf(o)
		if spec == nil {
			continue
		}
		for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
			for i := range cs {
				c := &cs[i]
				if imageName(c.Image) != img.Name {
					continue
				}
				name, tag := img.Name, strings.TrimPrefix(c.Image, imageName(c.Image))
				if img.NewName != "" {
					name = img.NewName
				}
				if img.NewTag != "" {
					tag = ":" + img.NewTag
				}
				c.Image = name + tag
			}
		}
	}
}

// kustomizeCommand returns a command that renders a kustomization with a
// kustomize of version 4 or later (kustomize, else kubectl's built-in
// one), or nil.
func kustomizeCommand(dir string) *exec.Cmd {
	if p, err := exec.LookPath("kustomize"); err == nil {
		return exec.Command(p, "build", dir)
	}
	p, err := exec.LookPath("kubectl")
	if err != nil {
		return nil
	}
	v, err := exec.Command(p, "version", "--client").CombinedOutput()
	if err != nil {
		return nil
	}
	m := regexp.MustCompile(`Kustomize Version: v(\d+)\.`).FindSubmatch(v)
	if m == nil {
		return nil
	}
	if major, err := strconv.Atoi(string(m[1])); err != nil || major < 4 {
		return nil
	}
	return exec.Command(p, "kustomize", dir)
}

// checkAgainstKustomize renders dir with kustomize, when one is installed,
// and requires the same objects as render.
func checkAgainstKustomize(t *testing.T, r *rendered) {
	t.Helper()
	cmd := kustomizeCommand(r.dir)
	if cmd == nil {
		// No Debian package ships kustomize ≥ 4; the renderer above covers
		// what the manifests use.
		t.Skip("no kustomize ≥ v4 (kustomize or kubectl) on PATH; rendered without it")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "%s: %s", cmd, stderr.String())
	want := map[string]*object{}
	for _, o := range r.objs {
		want[o.key()] = o
	}
	got := map[string]bool{}
	for _, doc := range splitDocs(t, out, cmd.String()) {
		o := decodeDoc(t, doc, cmd.String())
		w, ok := want[o.key()]
		require.True(t, ok, "kustomize renders %s, the test's renderer does not", o.key())
		require.True(t, apiequality.Semantic.DeepEqual(w.obj, o.obj),
			"%s differs between kustomize and the test's renderer:\nkustomize: %s\nrenderer:  %s", o.key(), jsonOf(o.obj), jsonOf(w.obj))
		got[o.key()] = true
	}
	for k := range want {
		require.True(t, got[k], "the test's renderer has %s, kustomize does not", k)
	}
}

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// moduleFile is a path under the module root.
func moduleFile(t *testing.T, parts ...string) string {
	t.Helper()
	return filepath.Join(append([]string{testutil.ModuleRoot(t)}, parts...)...)
}

// kustomizations lists the directories under deploy/kubernetes that hold a
// kustomization.yaml.
func kustomizations(t *testing.T) []string {
	t.Helper()
	var dirs []string
	root := moduleFile(t, "deploy", "kubernetes")
	require.NoError(t, filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == "kustomization.yaml" {
			dirs = append(dirs, filepath.Dir(p))
		}
		return nil
	}))
	slices.Sort(dirs)
	return dirs
}

// TestManifestsDecodeStrictly decodes every YAML file under deploy/ and the
// Kubernetes examples, and requires every file of a kustomization
// directory to be a resource or a patch of it, so that no manifest is left
// out of the tests or of `kubectl apply -k`.
func TestManifestsDecodeStrictly(t *testing.T) {
	used := map[string]bool{}
	for _, dir := range kustomizations(t) {
		file := filepath.Join(dir, "kustomization.yaml")
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		var k kustomization
		require.NoError(t, utilyaml.UnmarshalStrict(data, &k), file)
		used[file] = true
		for _, res := range k.Resources {
			used[filepath.Join(dir, res)] = true
		}
		for _, p := range k.Patches {
			used[filepath.Join(dir, p.Path)] = true
		}
	}
	for _, root := range []string{moduleFile(t, "deploy"), moduleFile(t, "examples", "kubernetes"),
		moduleFile(t, "examples", "argo-rollouts"), moduleFile(t, "examples", "flagger")} {
		require.NoError(t, filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || filepath.Ext(p) != ".yaml" || d.Name() == "kustomization.yaml" {
				return err
			}
			objs := readManifests(t, p)
			require.NotEmpty(t, objs, p)
			if strings.HasPrefix(p, moduleFile(t, "deploy")) {
				require.True(t, used[p], "%s is in no kustomization's resources or patches", p)
			}
			return nil
		}))
	}
}

// TestKustomizationsRender renders every kustomization and, where kustomize
// is installed, compares with its output.
func TestKustomizationsRender(t *testing.T) {
	for _, dir := range kustomizations(t) {
		rel, err := filepath.Rel(moduleFile(t), dir)
		require.NoError(t, err)
		t.Run(rel, func(t *testing.T) {
			r := render(t, dir)
			require.NotEmpty(t, r.objs)
			checkAgainstKustomize(t, r)
		})
	}
}
