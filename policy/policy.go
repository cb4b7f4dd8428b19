// Package policy decides whether a caller may perform an action, with rules
// written in oslo.policy's language so that operators' policy files for
// OpenStack keep their meaning here: "role:admin", "rule:admin_required",
// "project_id:%(target.project.id)s", "'member':%(target.role.name)s",
// Neutron's "field:networks:shared=True", "@", "!", combined with "not",
// "and", "or" (binding in that order) and parentheses. Each API package registers its default rules; a policy file
// overrides them rule by rule.
package policy

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/trustack/trustack"
)

// Rule is a named check and what it guards, for the documentation of the
// defaults.
type Rule struct {
	Name        string
	Check       string
	Description string
}

// Credentials are what the caller's token proves, the left-hand side of
// checks: role names (implied roles included) and attributes such as
// user_id, project_id and token.project.domain.id. Attributes Keystone
// leaves as None, such as domain_id for a project-scoped token, are the
// string "None", as oslo.policy compares them.
type Credentials interface {
	// HasRole reports whether the caller holds the role, ignoring case.
	HasRole(name string) bool
	// Value returns a credential attribute, and false if there is none.
	Value(key string) (string, bool)
}

// Static is Credentials given as plain values.
type Static struct {
	Roles  []string
	Values map[string]string
}

func (s Static) HasRole(name string) bool {
	for _, r := range s.Roles {
		if strings.EqualFold(r, name) {
			return true
		}
	}
	return false
}

func (s Static) Value(key string) (string, bool) {
	v, ok := s.Values[key]
	return v, ok
}

// Target describes the thing acted on, flattened to dotted keys such as
// "target.user.domain_id"; it is what %(...)s refers to. A check that
// refers to a key the target lacks is false.
type Target map[string]string

// Enforcer holds compiled rules. It is safe for concurrent use.
type Enforcer struct {
	rules map[string]*Rule
	trees map[string]node
}

// New compiles the default rules with the overrides applied on top. An
// override may also add rules of its own for others to refer to. Several
// APIs may define the same default rule (context_is_admin, say) if they
// agree on it.
func New(defaults []Rule, overrides map[string]string) (*Enforcer, error) {
	e := &Enforcer{rules: map[string]*Rule{}, trees: map[string]node{}}
	for i := range defaults {
		r := defaults[i]
		if have, dup := e.rules[r.Name]; dup {
			if have.Check != r.Check {
				return nil, fmt.Errorf("policy: rule %q defined twice, as %q and as %q", r.Name, have.Check, r.Check)
			}
			continue
		}
		e.rules[r.Name] = &r
	}
	for name, check := range overrides {
		if r, ok := e.rules[name]; ok {
			r.Check = check
		} else {
			e.rules[name] = &Rule{Name: name, Check: check}
		}
	}
	for name, r := range e.rules {
		tree, err := parse(r.Check)
		if err != nil {
			return nil, fmt.Errorf("policy: rule %q: %w", name, err)
		}
		e.trees[name] = tree
	}
	return e, nil
}

// LoadFile reads overrides from a policy file, YAML or JSON (a JSON file is
// YAML too), mapping rule names to check strings.
func LoadFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy file: %w", err)
	}
	var rules map[string]string
	if err := yaml.Unmarshal(b, &rules); err != nil {
		return nil, fmt.Errorf("policy file %s: want a map of rule names to check strings: %w", path, err)
	}
	return rules, nil
}

// Allowed reports whether the rule allows the caller to act on the target.
// A rule that was never registered allows nothing.
func (e *Enforcer) Allowed(rule string, c Credentials, t Target) bool {
	tree, ok := e.trees[rule]
	return ok && tree.eval(e, c, t, 0)
}

// Authorize returns nil if the rule allows the caller to act on the
// target, and an EFORBIDDEN error naming the rule if it does not. Asking
// about an unregistered rule is a bug and gives EINTERNAL.
func (e *Enforcer) Authorize(rule string, c Credentials, t Target) error {
	if _, ok := e.trees[rule]; !ok {
		return fmt.Errorf("policy rule %q is not registered", rule)
	}
	if !e.Allowed(rule, c, t) {
		return trustack.Errorf(trustack.EFORBIDDEN, "You are not authorized to perform the requested action: %s.", rule)
	}
	return nil
}

// Rules returns the rules in effect, sorted by name.
func (e *Enforcer) Rules() []Rule {
	out := make([]Rule, 0, len(e.rules))
	for _, r := range e.rules {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// YAML renders rules as a policy file that documents each one.
func YAML(rules []Rule) string {
	var b strings.Builder
	for _, r := range rules {
		if r.Description != "" {
			fmt.Fprintf(&b, "# %s\n", r.Description)
		}
		fmt.Fprintf(&b, "#%q: %q\n\n", r.Name, r.Check)
	}
	return b.String()
}

// CredentialsOf returns the credentials a validated token proves. They
// read the token as they are asked, so checking a request allocates
// nothing.
func CredentialsOf(t *trustack.Token) Credentials { return tokenCredentials{t} }

type tokenCredentials struct{ t *trustack.Token }

func (c tokenCredentials) HasRole(name string) bool {
	for _, r := range c.t.Roles {
		if strings.EqualFold(r.Name, name) {
			return true
		}
	}
	return false
}

func (c tokenCredentials) Value(key string) (string, bool) {
	t := c.t
	switch key {
	case "user_id":
		return t.User.ID, true
	case "user_domain_id", "token.user.domain.id":
		return t.User.DomainID, true
	case "project_id", "tenant_id": // tenant_id as Neutron's rules name it
		if t.Project == nil {
			return "None", true
		}
		return t.Project.ID, true
	case "project_domain_id", "token.project.domain.id":
		if t.Project == nil {
			return "None", true
		}
		return t.Project.DomainID, true
	case "domain_id", "token.domain.id":
		if t.Domain == nil {
			return "None", true
		}
		return t.Domain.ID, true
	case "system_scope":
		return "None", true // trustack issues no system-scoped tokens
	case "is_admin_project":
		// As keystonemiddleware says of every token when Keystone names
		// no admin project, as trustack does not.
		return "True", true
	case "is_admin":
		// As oslo.context derives it from context_is_admin (role:admin).
		if c.HasRole("admin") {
			return "True", true
		}
		return "False", true
	}
	return "", false
}
