package trustack

import "time"

// DefaultDomainID is the ID of the domain that exists from the first start,
// as in Keystone.
const DefaultDomainID = "default"

// Extra holds the attributes a client sent that trustack does not interpret
// (Keystone keeps them, so clients may store an email or a note on a user).
// Nil and empty mean none.
type Extra map[string]any

// Domain is a container of projects, users and groups: an organisation.
type Domain struct {
	ID          string
	Name        string // unique among domains
	Description string
	Enabled     bool
	Extra       Extra
}

// Project owns resources (servers, images, volumes) and is what quotas
// count against; Keystone's "tenant". ParentID is the domain's ID for a
// top-level project.
type Project struct {
	ID          string
	Name        string // unique within its domain
	Description string
	DomainID    string
	ParentID    string
	Enabled     bool
	Tags        []string // free-form labels, each unique
	Extra       Extra
}

// User is a person or a service that authenticates. Its password hash is
// kept by the store apart from the user and never leaves it.
type User struct {
	ID               string
	Name             string // unique within its domain
	DomainID         string
	DefaultProjectID string // "" when none
	Enabled          bool
	Extra            Extra
}

// Group is a set of users of one domain; roles granted to a group apply to
// each of its members.
type Group struct {
	ID          string
	Name        string // unique within its domain
	Description string
	DomainID    string
	Extra       Extra
}

// Role is a named set of permissions, interpreted by policy rules
// ("role:admin"). A role may imply others: admin implies member, which
// implies reader.
type Role struct {
	ID          string
	Name        string // unique
	Description string
	Extra       Extra
}

// ImpliedRole says that holding the role PriorID also grants ImpliedID.
type ImpliedRole struct {
	PriorID   string
	ImpliedID string
}

// Assignment grants a role to a user or a group (exactly one of UserID and
// GroupID is set) on a project or a domain (exactly one of ProjectID and
// DomainID is set).
type Assignment struct {
	RoleID    string
	UserID    string
	GroupID   string
	ProjectID string
	DomainID  string
}

// AssignmentFilter selects assignments; empty fields match everything.
type AssignmentFilter struct {
	RoleID    string
	UserID    string
	GroupID   string
	ProjectID string
	DomainID  string
	// IncludeGroups, with UserID, also selects the assignments of the
	// groups the user is a member of.
	IncludeGroups bool
}

// Region groups endpoints by location; regions may nest.
type Region struct {
	ID             string
	Description    string
	ParentRegionID string // "" for a top-level region
	Extra          Extra
}

// Service is an entry of the catalog: one kind of API (identity, compute).
type Service struct {
	ID          string
	Type        string // "identity", "compute", "image", ...
	Name        string
	Description string
	Enabled     bool
	Extra       Extra
}

// Endpoint is where a service is reached, per interface and region.
type Endpoint struct {
	ID        string
	ServiceID string
	RegionID  string // "" when the endpoint has no region
	Interface string // "public", "internal" or "admin"
	URL       string
	Enabled   bool
	Extra     Extra
}

// Endpoint interfaces.
const (
	InterfacePublic   = "public"
	InterfaceInternal = "internal"
	InterfaceAdmin    = "admin"
)

// Revocation invalidates tokens before their expiry: the token with the
// audit ID AuditID, or every token of UserID issued before IssuedBefore.
// It is kept until ExpiresAt, when every token it could match has expired.
type Revocation struct {
	AuditID      string
	UserID       string
	IssuedBefore time.Time
	ExpiresAt    time.Time
}

// Token is what a valid token proves: who authenticated, how, when, and
// what it is scoped to, with the roles the user holds there (implied roles
// included). A token scoped to nothing has neither Project nor Domain and
// no roles.
type Token struct {
	User          User
	UserDomain    Domain
	Methods       []string // "password", "token"
	Project       *Project // set for a project-scoped token
	ProjectDomain *Domain  // the domain of Project
	Domain        *Domain  // set for a domain-scoped token
	Roles         []Role
	IssuedAt      time.Time
	ExpiresAt     time.Time
	AuditIDs      []string // the token's own audit ID, then the one of the token it was made from
}

// Credential is a secret a user keeps with the identity service for
// another service to use, as Keystone's credentials: an EC2 access and
// secret key pair that signs requests to the S3 API (Type "ec2"), a
// certificate, a TOTP seed.
type Credential struct {
	ID        string
	UserID    string
	ProjectID string // "" when none; an ec2 credential needs one
	Type      string // CredentialEC2, or any other the user chooses
	// Blob is the secret, as the user gave it; for an ec2 credential, a
	// JSON object {"access": ..., "secret": ..., "trust_id": ...}. The
	// identity service hands its store the blob encrypted.
	Blob string
	// Access is an ec2 credential's access key, from its blob, unique
	// among all credentials; "" for other types.
	Access string
	Extra  Extra
}

// CredentialEC2 is the type of the credentials that sign requests to the
// S3 API, as AWS's access keys.
const CredentialEC2 = "ec2"

// Filters for listing identity resources: empty strings and nil pointers
// match everything; set fields must all match.
type (
	DomainFilter struct {
		Name    string
		Enabled *bool
	}
	ProjectFilter struct {
		DomainID string
		Name     string
		ParentID string
		Enabled  *bool
		IDs      []string // when non-nil, only these projects
	}
	UserFilter struct {
		DomainID string
		Name     string
		GroupID  string // members of this group
		Enabled  *bool
	}
	GroupFilter struct {
		DomainID string
		Name     string
		UserID   string // groups this user is a member of
	}
	RoleFilter struct {
		Name string
	}
	CredentialFilter struct {
		UserID string
		Type   string
		Access string // the ec2 credential with this access key
	}
	RegionFilter struct {
		ParentRegionID string
	}
	ServiceFilter struct {
		Type string
		Name string
	}
	EndpointFilter struct {
		ServiceID string
		RegionID  string
		Interface string
	}
)
