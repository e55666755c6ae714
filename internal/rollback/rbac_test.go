package rollback

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/spanwatch/spanwatch/internal/testutil"
)

// permission is one RBAC grant: a verb on a resource of an API group.
type permission struct{ group, resource, verb string }

func (p permission) String() string {
	return fmt.Sprintf("%s %s.%s", p.verb, p.resource, p.group)
}

// rollbackCalls runs everything the gate does with a rollback target
// (Prepare, a dry-run Undo, a real Undo) against a fake API server and
// returns the permissions its requests need, and those of the dry run
// alone.
func rollbackCalls(t *testing.T) (all, dryRun []permission) {
	t.Helper()
	ctx := context.Background()
	_, objs := rbObjects()
	client := fake.NewClientset(objs...)
	rb := New(client, nil)
	collect := func() []permission {
		var out []permission
		for _, a := range client.Actions() {
			gvr := a.GetResource()
			res := gvr.Resource
			if sub := a.GetSubresource(); sub != "" {
				res += "/" + sub
			}
			p := permission{gvr.Group, res, a.GetVerb()}
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
		return out
	}

	p, err := rb.Prepare(ctx, rbTarget(t))
	require.NoError(t, err)
	msg, err := p.Undo(ctx, true)
	require.NoError(t, err)
	require.Contains(t, msg, "dry run")
	dryRun = collect()

	msg, err = p.Undo(ctx, false)
	require.NoError(t, err)
	require.Contains(t, msg, "rolled back from revision 3 to revision 2")
	return collect(), dryRun
}

// rolePermissions expands a Role's rules into single permissions. Wildcards,
// non-resource URLs and empty lists are errors: a Role meant to grant
// exactly the rollback's calls spells each one out.
func rolePermissions(t *testing.T, role *rbacv1.Role) []permission {
	t.Helper()
	var out []permission
	for i, r := range role.Rules {
		require.Empty(t, r.NonResourceURLs, "rule %d: a Role has no non-resource URLs", i)
		require.NotEmpty(t, r.APIGroups, "rule %d", i)
		require.NotEmpty(t, r.Resources, "rule %d", i)
		require.NotEmpty(t, r.Verbs, "rule %d", i)
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					require.NotContains(t, []string{g, res, v}, rbacv1.ResourceAll, "rule %d: no wildcards", i)
					p := permission{g, res, v}
					require.NotContains(t, out, p, "rule %d repeats %s", i, p)
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// rolesIn decodes the Roles among the YAML documents in data, strictly:
// an unknown or duplicate field is an error.
func rolesIn(t *testing.T, data []byte, what string) []*rbacv1.Role {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var roles []*rbacv1.Role
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, what)
		var tm metav1.TypeMeta
		require.NoError(t, utilyaml.Unmarshal(doc, &tm), what)
		if tm.Kind != "Role" {
			continue
		}
		require.Equal(t, rbacv1.SchemeGroupVersion.String(), tm.APIVersion, what)
		role := &rbacv1.Role{}
		require.NoError(t, utilyaml.UnmarshalStrict(doc, role), what)
		roles = append(roles, role)
	}
	return roles
}

func sortedStrings(ps []permission) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.String())
	}
	slices.Sort(out)
	return out
}

// TestRBACRolesGrantExactlyTheRollbackCalls holds the Role of
// deploy/kubernetes/gate-rbac and the one in docs/gate.md to the requests a
// rollback makes: every call is granted, and nothing else is.
func TestRBACRolesGrantExactlyTheRollbackCalls(t *testing.T) {
	defer goleak.VerifyNone(t)
	calls, dryRun := rollbackCalls(t)
	require.Equal(t, []string{"get deployments.apps", "list replicasets.apps"}, sortedStrings(dryRun),
		"docs/gate.md says a dry run needs get deployments and list replicasets")
	require.Equal(t, []string{"get deployments.apps", "list replicasets.apps", "patch deployments.apps"}, sortedStrings(calls),
		"the rollback's API calls changed: update the Roles in deploy/kubernetes/gate-rbac and docs/gate.md")

	root := testutil.ModuleRoot(t)
	manifest := filepath.Join(root, "deploy", "kubernetes", "gate-rbac", "rbac.yaml")
	data, err := os.ReadFile(manifest)
	require.NoError(t, err)
	roles := rolesIn(t, data, manifest)
	require.Len(t, roles, 1, manifest)
	require.Equal(t, sortedStrings(calls), sortedStrings(rolePermissions(t, roles[0])), manifest)
	for _, r := range roles[0].Rules {
		require.Empty(t, r.ResourceNames, "%s: the gate-rbac Role is for any Deployment of its namespace", manifest)
	}

	// The Role shown in docs/gate.md (it may narrow deployments by
	// resourceNames; list cannot be narrowed that way).
	doc := filepath.Join(root, "docs", "gate.md")
	md, err := os.ReadFile(doc)
	require.NoError(t, err)
	var docRoles []*rbacv1.Role
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(md, -1) {
		if strings.Contains(string(m[1]), "kind: Role\n") {
			docRoles = append(docRoles, rolesIn(t, m[1], doc)...)
		}
	}
	require.Len(t, docRoles, 1, doc)
	require.Equal(t, sortedStrings(calls), sortedStrings(rolePermissions(t, docRoles[0])), doc)
	for _, r := range docRoles[0].Rules {
		if slices.Contains(r.Verbs, "list") {
			require.Empty(t, r.ResourceNames, "%s: list requests carry no name, so resourceNames would deny them", doc)
		}
	}
}
