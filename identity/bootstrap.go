package identity

import (
	"context"
	"fmt"

	"github.com/trustack/trustack"
)

// BootstrapAccount is a project with a user holding a role on it.
type BootstrapAccount struct {
	Project  string // project name, in the default domain
	User     string // user name, in the default domain
	Role     string // role name
	Password string
	// ResetPassword sets Password even if the user exists; otherwise an
	// existing user keeps its password.
	ResetPassword bool
}

// BootstrapEndpoint is a catalog entry to keep at a URL.
type BootstrapEndpoint struct {
	Type string // "identity", "compute", ...
	Name string // "keystone", "nova", ...
	URL  string
}

// BootstrapConfig is what a new cloud starts with.
type BootstrapConfig struct {
	Region    string
	Accounts  []BootstrapAccount
	Endpoints []BootstrapEndpoint
}

// The roles every cloud has, each implying the next, as Keystone's
// bootstrap makes them.
var bootstrapRoles = []string{"admin", "manager", "member", "reader"}

// Bootstrap makes sure the cloud has what it needs to be used: the default
// domain, the roles admin, manager, member and reader (each implying the
// next), the accounts, the region and a public, internal and admin endpoint
// per catalog entry at its URL. It creates what is missing, moves
// endpoints whose URL changed, and leaves everything else as it is, so it
// runs at every start.
func (s *Service) Bootstrap(ctx context.Context, cfg BootstrapConfig) error {
	if _, err := s.Store.Domain(ctx, trustack.DefaultDomainID); trustack.ErrorCode(err) == trustack.ENOTFOUND {
		err = s.CreateDomain(ctx, &trustack.Domain{ID: trustack.DefaultDomainID, Name: "Default", Description: "The default domain", Enabled: true})
		if err != nil {
			return fmt.Errorf("bootstrap default domain: %w", err)
		}
	} else if err != nil {
		return err
	}
	roleIDs := map[string]string{}
	for i, name := range bootstrapRoles {
		r, err := s.ensureRole(ctx, name)
		if err != nil {
			return err
		}
		roleIDs[name] = r.ID
		if i > 0 {
			if err := s.CreateImpliedRole(ctx, trustack.ImpliedRole{PriorID: roleIDs[bootstrapRoles[i-1]], ImpliedID: r.ID}); err != nil {
				return fmt.Errorf("bootstrap implied role: %w", err)
			}
		}
	}
	for _, a := range cfg.Accounts {
		if err := s.ensureAccount(ctx, a, roleIDs); err != nil {
			return fmt.Errorf("bootstrap account %s: %w", a.User, err)
		}
	}
	if _, err := s.Store.Region(ctx, cfg.Region); trustack.ErrorCode(err) == trustack.ENOTFOUND {
		if err := s.CreateRegion(ctx, &trustack.Region{ID: cfg.Region}); err != nil {
			return fmt.Errorf("bootstrap region: %w", err)
		}
	} else if err != nil {
		return err
	}
	for _, e := range cfg.Endpoints {
		if err := s.ensureEndpoints(ctx, cfg.Region, e); err != nil {
			return fmt.Errorf("bootstrap %s endpoints: %w", e.Type, err)
		}
	}
	return nil
}

func (s *Service) ensureRole(ctx context.Context, name string) (*trustack.Role, error) {
	roles, err := s.Store.Roles(ctx, trustack.RoleFilter{Name: name})
	if err != nil || len(roles) > 0 {
		return first(roles), err
	}
	r := &trustack.Role{Name: name}
	return r, s.CreateRole(ctx, r)
}

func first[T any](list []*T) *T {
	if len(list) == 0 {
		return nil
	}
	return list[0]
}

func (s *Service) ensureAccount(ctx context.Context, a BootstrapAccount, roleIDs map[string]string) error {
	ps, err := s.Store.Projects(ctx, trustack.ProjectFilter{DomainID: trustack.DefaultDomainID, Name: a.Project})
	if err != nil {
		return err
	}
	project := first(ps)
	if project == nil {
		project = &trustack.Project{Name: a.Project, DomainID: trustack.DefaultDomainID, Enabled: true}
		if err := s.CreateProject(ctx, project); err != nil {
			return err
		}
	}
	us, err := s.Store.Users(ctx, trustack.UserFilter{DomainID: trustack.DefaultDomainID, Name: a.User})
	if err != nil {
		return err
	}
	user := first(us)
	switch {
	case user == nil:
		user = &trustack.User{Name: a.User, DomainID: trustack.DefaultDomainID, DefaultProjectID: project.ID, Enabled: true}
		if err := s.CreateUser(ctx, user, a.Password); err != nil {
			return err
		}
	case a.ResetPassword:
		if _, err := s.UpdateUser(ctx, user.ID, func(*trustack.User) error { return nil }, &a.Password); err != nil {
			return err
		}
	}
	roleID, ok := roleIDs[a.Role]
	if !ok {
		return fmt.Errorf("unknown bootstrap role %q", a.Role)
	}
	return s.Grant(ctx, trustack.Assignment{RoleID: roleID, UserID: user.ID, ProjectID: project.ID})
}

func (s *Service) ensureEndpoints(ctx context.Context, region string, e BootstrapEndpoint) error {
	svcs, err := s.Store.Services(ctx, trustack.ServiceFilter{Type: e.Type})
	if err != nil {
		return err
	}
	svc := first(svcs)
	if svc == nil {
		svc = &trustack.Service{Type: e.Type, Name: e.Name, Enabled: true}
		if err := s.CreateService(ctx, svc); err != nil {
			return err
		}
	}
	have, err := s.Store.Endpoints(ctx, trustack.EndpointFilter{ServiceID: svc.ID})
	if err != nil {
		return err
	}
	for _, iface := range []string{trustack.InterfacePublic, trustack.InterfaceInternal, trustack.InterfaceAdmin} {
		var ep *trustack.Endpoint
		for _, h := range have {
			if h.Interface == iface && h.RegionID == region {
				ep = h
			}
		}
		switch {
		case ep == nil:
			err = s.CreateEndpoint(ctx, &trustack.Endpoint{ServiceID: svc.ID, RegionID: region, Interface: iface, URL: e.URL, Enabled: true})
		case ep.URL != e.URL:
			_, err = s.UpdateEndpoint(ctx, ep.ID, func(ep *trustack.Endpoint) error { ep.URL = e.URL; return nil })
		}
		if err != nil {
			return err
		}
	}
	return nil
}
