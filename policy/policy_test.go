package policy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/trustack/trustack"
)

var (
	admin = Static{Roles: []string{"admin", "member", "reader"}, Values: map[string]string{
		"user_id": "u-admin", "project_id": "p-admin", "domain_id": "None", "token.project.domain.id": "default",
	}}
	member = Static{Roles: []string{"member", "reader"}, Values: map[string]string{
		"user_id": "u1", "project_id": "p1", "domain_id": "None", "token.project.domain.id": "default",
	}}
	domainReader = Static{Roles: []string{"Reader"}, Values: map[string]string{
		"user_id": "u2", "project_id": "None", "domain_id": "d1", "token.domain.id": "d1",
	}}
)

func TestChecks(t *testing.T) {
	base := []Rule{
		{Name: "admin_required", Check: "role:admin or is_admin:1"},
		{Name: "owner", Check: "user_id:%(user_id)s"},
		{Name: "admin_or_owner", Check: "rule:admin_required or rule:owner"},
		{Name: "loop", Check: "rule:loop"},
		{Name: "shared", Check: "field:networks:shared=True"},
		{Name: "external", Check: "field:networks:router:external=True"},
	}
	tests := []struct {
		name  string
		check string
		cred  Static
		tgt   Target
		want  bool
	}{
		{"empty allows", "", member, nil, true},
		{"at allows", "@", member, nil, true},
		{"bang denies", "!", admin, nil, false},
		{"role", "role:admin", admin, nil, true},
		{"role missing", "role:admin", member, nil, false},
		{"role ignores case", "role:reader", domainReader, nil, true},
		{"named rule", "rule:admin_or_owner", member, Target{"user_id": "u1"}, true},
		{"named rule other owner", "rule:admin_or_owner", member, Target{"user_id": "u9"}, false},
		{"unknown rule denies", "rule:nope", admin, nil, false},
		{"self reference denies", "rule:loop", admin, nil, false},
		{"credential equals target", "project_id:%(target.project.id)s", member, Target{"target.project.id": "p1"}, true},
		{"credential differs", "project_id:%(target.project.id)s", member, Target{"target.project.id": "p2"}, false},
		{"missing target key is false", "project_id:%(target.project.id)s", member, Target{}, false},
		{"missing credential is false", "foo:bar", member, nil, false},
		{"credential constant", "domain_id:None", member, nil, true},
		{"not domain scoped", "not domain_id:None", domainReader, nil, true},
		{"quoted literal", "'member':%(target.role.name)s", member, Target{"target.role.name": "member"}, true},
		{"quoted literal differs", "'member':%(target.role.name)s", member, Target{"target.role.name": "admin"}, false},
		{"None literal", "None:%(target.role.domain_id)s", member, Target{"target.role.domain_id": "None"}, true},
		{"True literal", "True:%(target.user.enabled)s", member, Target{"target.user.enabled": "True"}, true},
		{"not binds tighter than and", "not role:admin and role:member", member, nil, true},
		{"and binds tighter than or", "role:admin or role:member and role:nope", admin, nil, true},
		{"parentheses", "(role:admin or role:member) and role:nope", admin, nil, false},
		{"nested parentheses", "((role:reader and domain_id:%(target.domain_id)s))", domainReader, Target{"target.domain_id": "d1"}, true},
		{"field equals", "field:networks:shared=True", member, Target{"shared": "True"}, true},
		{"field differs", "field:networks:shared=True", member, Target{"shared": "False"}, false},
		{"field boolean in any case", "field:networks:shared=true", member, Target{"shared": "True"}, true},
		{"field missing is false", "field:networks:shared=True", member, Target{}, false},
		{"field with a colon in its name", "field:networks:router:external=True", member, Target{"router:external": "True"}, true},
		{"field string", "field:ports:device_owner=network:dhcp", member, Target{"device_owner": "network:dhcp"}, true},
		{"field regexp matches the start", "field:port:device_owner=~^network:", member, Target{"device_owner": "network:router_gateway"}, true},
		{"field regexp anchored as re.match", "field:port:device_owner=~network:", member, Target{"device_owner": "compute:nova network:"}, false},
		{"not field regexp", "not field:port:device_owner=~^network:", member, Target{"device_owner": "compute:nova"}, true},
		{"neutron get_network shared", "(role:admin) or (role:reader and project_id:%(project_id)s) or rule:shared or rule:external",
			member, Target{"project_id": "p9", "shared": "True", "router:external": "False"}, true},
		{"keystone get_project as member of it", "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s) or project_id:%(target.project.id)s",
			member, Target{"target.project.id": "p1", "target.project.domain_id": "default"}, true},
		{"keystone get_project of another", "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s) or project_id:%(target.project.id)s",
			member, Target{"target.project.id": "p9", "target.project.domain_id": "default"}, false},
		{"keystone list_users as member", "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.domain_id)s)",
			member, Target{}, false},
		{"keystone list_users as admin", "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.domain_id)s)",
			admin, Target{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(append(base, Rule{Name: "x", Check: tt.check}), nil)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if got := e.Allowed("x", tt.cred, tt.tgt); got != tt.want {
				t.Errorf("Allowed(%q) = %v, want %v", tt.check, got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, check := range []string{
		"role:admin and",
		"or role:admin",
		"(role:admin",
		"role:admin)",
		"admin",
		"http://policy.example.com/check",
		"not",
		"role:a and and role:b",
		"field:networks",
		"field:networks:shared",
		"field:ports:device_owner=~(",
	} {
		if _, err := New([]Rule{{Name: "x", Check: check}}, nil); err == nil {
			t.Errorf("New(%q): got no error, want one", check)
		}
	}
}

func TestOverridesFromFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.yaml")
	os.WriteFile(file, []byte(`
"identity:list_users": "role:reader"
"custom": "role:auditor"
"identity:get_user": "rule:custom"
`), 0o600)
	overrides, err := LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New([]Rule{
		{Name: "identity:list_users", Check: "role:admin"},
		{Name: "identity:get_user", Check: "role:admin"},
		{Name: "identity:delete_user", Check: "role:admin"},
	}, overrides)
	if err != nil {
		t.Fatal(err)
	}
	auditor := Static{Roles: []string{"auditor"}}
	for _, tc := range []struct {
		rule string
		cred Static
		want bool
	}{
		{"identity:list_users", member, true},   // loosened by the file
		{"identity:get_user", auditor, true},    // refers to a rule the file added
		{"identity:get_user", admin, false},     // the default no longer applies
		{"identity:delete_user", admin, true},   // untouched default
		{"identity:delete_user", member, false}, // untouched default
	} {
		if got := e.Allowed(tc.rule, tc.cred, nil); got != tc.want {
			t.Errorf("Allowed(%s, %v) = %v, want %v", tc.rule, tc.cred.Roles, got, tc.want)
		}
	}
}

func TestAuthorize(t *testing.T) {
	e, err := New([]Rule{{Name: "identity:list_users", Check: "role:admin"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Authorize("identity:list_users", admin, nil); err != nil {
		t.Errorf("admin: got %v, want nil", err)
	}
	err = e.Authorize("identity:list_users", member, nil)
	if got := trustack.ErrorCode(err); got != trustack.EFORBIDDEN {
		t.Errorf("member: got code %q, want %q", got, trustack.EFORBIDDEN)
	}
	if got := trustack.ErrorCode(e.Authorize("identity:unregistered", admin, nil)); got != trustack.EINTERNAL {
		t.Errorf("unregistered rule: got code %q, want %q", got, trustack.EINTERNAL)
	}
}

func TestCredentialsOfToken(t *testing.T) {
	project := &trustack.Project{ID: "p1", DomainID: "d1"}
	tok := &trustack.Token{User: trustack.User{ID: "u1", DomainID: "d0"}, Project: project, Roles: []trustack.Role{{Name: "Member"}}}
	c := CredentialsOf(tok)
	for key, want := range map[string]string{
		"user_id": "u1", "user_domain_id": "d0", "project_id": "p1", "tenant_id": "p1", "token.project.domain.id": "d1",
		"domain_id": "None", "token.domain.id": "None", "system_scope": "None", "is_admin": "False",
	} {
		if got, ok := c.Value(key); !ok || got != want {
			t.Errorf("Value(%q) = %q, %v; want %q", key, got, ok, want)
		}
	}
	if _, ok := c.Value("nonsense"); ok {
		t.Error("an unknown attribute has a value")
	}
	if !c.HasRole("member") || c.HasRole("admin") {
		t.Error("HasRole does not follow the token's roles")
	}
	domainScoped := CredentialsOf(&trustack.Token{User: trustack.User{ID: "u1"}, Domain: &trustack.Domain{ID: "d9"}})
	if got, _ := domainScoped.Value("domain_id"); got != "d9" {
		t.Errorf("domain_id of a domain-scoped token = %q, want d9", got)
	}
	if got, _ := domainScoped.Value("project_id"); got != "None" {
		t.Errorf("project_id of a domain-scoped token = %q, want None", got)
	}
}

func TestIsAdminFollowsTheAdminRole(t *testing.T) {
	tok := &trustack.Token{Roles: []trustack.Role{{Name: "admin"}}}
	if got, _ := CredentialsOf(tok).Value("is_admin"); got != "True" {
		t.Errorf("is_admin of an admin's token = %q, want True", got)
	}
}

func TestSameRuleFromTwoAPIs(t *testing.T) {
	if _, err := New([]Rule{{Name: "context_is_admin", Check: "role:admin"}, {Name: "context_is_admin", Check: "role:admin"}}, nil); err != nil {
		t.Errorf("identical rules: %v", err)
	}
	if _, err := New([]Rule{{Name: "context_is_admin", Check: "role:admin"}, {Name: "context_is_admin", Check: "role:root"}}, nil); err == nil {
		t.Error("conflicting rules: no error")
	}
}
