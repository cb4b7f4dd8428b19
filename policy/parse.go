package policy

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// maxDepth bounds rule:... indirection, so that a rule that refers to
// itself denies instead of recursing forever.
const maxDepth = 32

// node is a compiled check.
type node interface {
	eval(e *Enforcer, c Credentials, t Target, depth int) bool
}

type (
	always  bool
	notNode struct{ n node }
	andNode []node
	orNode  []node
	// ruleCheck is rule:NAME.
	ruleCheck string
	// roleCheck is role:NAME, compared without regard to case.
	roleCheck string
	// genericCheck is KIND:MATCH: MATCH, with %(key)s taken from the
	// target, must equal the credential KIND, or KIND itself when KIND is a
	// literal ('text', True, False, None or a number).
	genericCheck struct {
		kind    string
		literal bool
		match   string
	}
	// fieldCheck is Neutron's field:RESOURCE:ATTRIBUTE=VALUE: the
	// target's ATTRIBUTE must be VALUE, "True" and "False" matching
	// whatever their case, or, for a VALUE of ~REGEXP, begin with a match
	// of REGEXP, as Python's re.match.
	fieldCheck struct {
		attr  string
		value string
		re    *regexp.Regexp
	}
)

func (a always) eval(*Enforcer, Credentials, Target, int) bool { return bool(a) }

func (n notNode) eval(e *Enforcer, c Credentials, t Target, d int) bool { return !n.n.eval(e, c, t, d) }

func (n andNode) eval(e *Enforcer, c Credentials, t Target, d int) bool {
	for _, x := range n {
		if !x.eval(e, c, t, d) {
			return false
		}
	}
	return true
}

func (n orNode) eval(e *Enforcer, c Credentials, t Target, d int) bool {
	for _, x := range n {
		if x.eval(e, c, t, d) {
			return true
		}
	}
	return false
}

func (r ruleCheck) eval(e *Enforcer, c Credentials, t Target, d int) bool {
	tree, ok := e.trees[string(r)]
	return ok && d < maxDepth && tree.eval(e, c, t, d+1)
}

func (r roleCheck) eval(_ *Enforcer, c Credentials, t Target, _ int) bool {
	want, ok := interpolate(string(r), t)
	return ok && c.HasRole(want)
}

func (g genericCheck) eval(_ *Enforcer, c Credentials, t Target, _ int) bool {
	match, ok := interpolate(g.match, t)
	if !ok {
		return false
	}
	if g.literal {
		return g.kind == match
	}
	have, ok := c.Value(g.kind)
	return ok && have == match
}

func (f fieldCheck) eval(_ *Enforcer, _ Credentials, t Target, _ int) bool {
	have, ok := t[f.attr]
	switch {
	case !ok:
		return false
	case f.re != nil:
		return f.re.MatchString(have)
	case isBool(have) && isBool(f.value):
		return strings.EqualFold(have, f.value)
	}
	return have == f.value
}

// isBool reports whether s is a boolean as Neutron's policy values write
// them: true or false, in any case.
func isBool(s string) bool {
	return strings.EqualFold(s, "true") || strings.EqualFold(s, "false")
}

// interpolate replaces each %(key)s in s with the target's value, and
// reports false if a key is missing.
func interpolate(s string, t Target) (string, bool) {
	if !strings.Contains(s, "%(") {
		return s, true
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "%(")
		if i < 0 {
			b.WriteString(s)
			return b.String(), true
		}
		j := strings.Index(s[i:], ")s")
		if j < 0 {
			b.WriteString(s)
			return b.String(), true
		}
		v, ok := t[s[i+2:i+j]]
		if !ok {
			return "", false
		}
		b.WriteString(s[:i])
		b.WriteString(v)
		s = s[i+j+2:]
	}
}

// parse compiles a check string; "" allows everything.
func parse(s string) (node, error) {
	p := &parser{toks: tokenize(s)}
	if len(p.toks) == 0 {
		return always(true), nil
	}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("unexpected %q in %q", p.toks[p.pos], s)
	}
	return n, nil
}

// tokenize splits on spaces and separates parentheses, as oslo.policy does.
func tokenize(s string) []string {
	var toks []string
	for _, f := range strings.Fields(s) {
		var closing int
		for strings.HasPrefix(f, "(") {
			toks = append(toks, "(")
			f = f[1:]
		}
		for strings.HasSuffix(f, ")") && !strings.HasSuffix(f, ")s") {
			closing++
			f = f[:len(f)-1]
		}
		if f != "" {
			toks = append(toks, f)
		}
		for ; closing > 0; closing-- {
			toks = append(toks, ")")
		}
	}
	return toks
}

type parser struct {
	toks []string
	pos  int
}

func (p *parser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *parser) or() (node, error) {
	return p.list("or", p.and, func(ns []node) node { return orNode(ns) })
}

func (p *parser) and() (node, error) {
	return p.list("and", p.not, func(ns []node) node { return andNode(ns) })
}

// list parses operands joined by the keyword op.
func (p *parser) list(op string, operand func() (node, error), join func([]node) node) (node, error) {
	first, err := operand()
	if err != nil {
		return nil, err
	}
	ns := []node{first}
	for strings.EqualFold(p.peek(), op) {
		p.pos++
		n, err := operand()
		if err != nil {
			return nil, err
		}
		ns = append(ns, n)
	}
	if len(ns) == 1 {
		return first, nil
	}
	return join(ns), nil
}

func (p *parser) not() (node, error) {
	if strings.EqualFold(p.peek(), "not") {
		p.pos++
		n, err := p.not()
		if err != nil {
			return nil, err
		}
		return notNode{n}, nil
	}
	return p.atom()
}

func (p *parser) atom() (node, error) {
	tok := p.peek()
	switch {
	case tok == "":
		return nil, fmt.Errorf("the rule ends where a check was expected")
	case tok == "(":
		p.pos++
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, fmt.Errorf("missing )")
		}
		p.pos++
		return n, nil
	case tok == ")" || strings.EqualFold(tok, "and") || strings.EqualFold(tok, "or"):
		return nil, fmt.Errorf("unexpected %q where a check was expected", tok)
	}
	p.pos++
	return check(tok)
}

// check compiles one KIND:MATCH check, or @ and !.
func check(tok string) (node, error) {
	switch tok {
	case "@":
		return always(true), nil
	case "!":
		return always(false), nil
	}
	kind, match, ok := strings.Cut(tok, ":")
	if !ok {
		return nil, fmt.Errorf("check %q: want KIND:MATCH", tok)
	}
	switch kind {
	case "rule":
		return ruleCheck(match), nil
	case "role":
		return roleCheck(match), nil
	case "field":
		return field(tok, match)
	case "http", "https":
		return nil, fmt.Errorf("check %q: remote checks are not supported", tok)
	}
	if lit, ok := literal(kind); ok {
		return genericCheck{kind: lit, literal: true, match: match}, nil
	}
	return genericCheck{kind: kind, match: match}, nil
}

// field compiles the RESOURCE:ATTRIBUTE=VALUE of a field check. The
// resource only documents the check: the target is the resource checked.
func field(tok, match string) (node, error) {
	_, attrValue, ok := strings.Cut(match, ":")
	attr, value, hasValue := strings.Cut(attrValue, "=")
	if !ok || !hasValue || attr == "" {
		return nil, fmt.Errorf("check %q: want field:RESOURCE:ATTRIBUTE=VALUE", tok)
	}
	f := fieldCheck{attr: attr, value: value}
	if pattern, isRegexp := strings.CutPrefix(value, "~"); isRegexp {
		re, err := regexp.Compile("^(?:" + pattern + ")")
		if err != nil {
			return nil, fmt.Errorf("check %q: %w", tok, err)
		}
		f.re = re
	}
	return f, nil
}

// literal returns the string form of a Python literal on the left of a
// check ('text', "text", True, False, None, a number), as oslo.policy
// compares it.
func literal(s string) (string, bool) {
	switch {
	case len(s) >= 2 && (s[0] == '\'' || s[0] == '"') && s[len(s)-1] == s[0]:
		return s[1 : len(s)-1], true
	case s == "True" || s == "False" || s == "None":
		return s, true
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return s, true
	}
	return "", false
}
