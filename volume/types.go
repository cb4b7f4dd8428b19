package volume

import (
	"context"
	"maps"
	"slices"

	"github.com/google/uuid"
	"github.com/trustack/trustack"
)

// TypeRequest describes a new volume type.
type TypeRequest struct {
	Name        string
	Description string
	Public      bool
	ExtraSpecs  map[string]string
}

// TypeUpdate changes a volume type; nil fields are left as they are.
type TypeUpdate struct {
	Name, Description *string
	Public            *bool
}

// Types returns volume types by name, as Cinder lists them: for others
// than administrators, those they may use (the public ones and those
// shared with their project); for an administrator, those public
// selects: all for nil, the private ones for false, and for true the
// public ones and those shared with their project.
func (s *Service) Types(ctx context.Context, c Caller, public *bool) ([]*trustack.VolumeType, error) {
	all, err := s.store.VolumeTypes(ctx)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, t := range all {
		in := true
		switch {
		case !c.Admin || public != nil && *public:
			// What the caller's project may use.
			if in, err = s.usable(ctx, Caller{ProjectID: c.ProjectID}, t); err != nil {
				return nil, err
			}
		case public != nil:
			in = !t.Public
		}
		if in {
			out = append(out, t)
		}
	}
	return out, nil
}

// Type returns a volume type by ID or name; ENOTFOUND
// (VolumeTypeNotFound) for a private one not shared with the caller's
// project, unless the caller is an administrator.
func (s *Service) Type(ctx context.Context, c Caller, ref string) (*trustack.VolumeType, error) {
	vt, err := s.volumeType(ctx, ref)
	if err != nil {
		return nil, err
	}
	if ok, err := s.usable(ctx, c, vt); err != nil {
		return nil, err
	} else if !ok {
		return nil, trustack.Reasonf(trustack.ENOTFOUND, "VolumeTypeNotFound", "Volume type %s could not be found.", ref)
	}
	return vt, nil
}

// usable reports whether the caller may see and use a type: a public
// one, one shared with their project, any for an administrator.
func (s *Service) usable(ctx context.Context, c Caller, vt *trustack.VolumeType) (bool, error) {
	if vt.Public || c.Admin {
		return true, nil
	}
	shared, err := s.store.VolumeTypeAccess(ctx, vt.ID)
	return slices.Contains(shared, c.ProjectID), err
}

// TypeAccess returns the projects a private type is shared with;
// ENOTFOUND (VolumeTypeAccessNotFound) for a public type, which every
// project may use.
func (s *Service) TypeAccess(ctx context.Context, id string) ([]string, error) {
	vt, err := s.store.VolumeType(ctx, id)
	if err != nil {
		return nil, err
	}
	if vt.Public {
		return nil, trustack.Reasonf(trustack.ENOTFOUND, "VolumeTypeAccessNotFound", "Access list not available for public volume types.")
	}
	return s.store.VolumeTypeAccess(ctx, id)
}

// ShareType shares a private type with a project, or stops sharing it:
// EINVALID for a public type, ECONFLICT (VolumeTypeAccessExists) for a
// share there is, ENOTFOUND (VolumeTypeAccessNotFound) for one there is
// not.
func (s *Service) ShareType(ctx context.Context, id, projectID string, share bool) error {
	vt, err := s.store.VolumeType(ctx, id)
	if err != nil {
		return err
	}
	if vt.Public {
		return trustack.Reasonf(trustack.EINVALID, "InvalidVolumeType", "Invalid volume type: Type access modification is not applicable to public volume type.")
	}
	if projectID == "" {
		return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: a project is needed.")
	}
	if share {
		return s.store.AddVolumeTypeAccess(ctx, id, projectID)
	}
	return s.store.RemoveVolumeTypeAccess(ctx, id, projectID)
}

// DefaultType returns the type of volumes that name none.
func (s *Service) DefaultType(ctx context.Context) (*trustack.VolumeType, error) {
	return s.volumeType(ctx, "")
}

// CreateType adds a volume type; ECONFLICT (VolumeTypeExists) for a name
// taken.
func (s *Service) CreateType(ctx context.Context, r TypeRequest) (*trustack.VolumeType, error) {
	if err := checkTypeText(r.Name, r.Description, r.ExtraSpecs); err != nil {
		return nil, err
	}
	if r.Name == "" {
		return nil, trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: a volume type needs a name.")
	}
	now := s.opts.Now().UTC()
	vt := &trustack.VolumeType{ID: uuid.NewString(), Name: r.Name, Description: r.Description, Public: r.Public,
		ExtraSpecs: maps.Clone(r.ExtraSpecs), CreatedAt: now, UpdatedAt: now}
	if vt.ExtraSpecs == nil {
		vt.ExtraSpecs = map[string]string{}
	}
	if err := s.store.CreateVolumeType(ctx, vt); err != nil {
		return nil, err
	}
	return vt, nil
}

// checkTypeText refuses names, descriptions and extra specs past
// Cinder's limits.
func checkTypeText(name, description string, specs map[string]string) error {
	if len(name) > 255 || len(description) > 255 {
		return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: a volume type's name and description have at most 255 characters.")
	}
	for k, v := range specs {
		if k == "" || len(k) > 255 || len(v) > 255 {
			return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: extra spec keys must be 1 to 255 characters, values at most 255.")
		}
	}
	return nil
}

// UpdateType renames, describes or publishes a volume type. The default
// type keeps its name.
func (s *Service) UpdateType(ctx context.Context, id string, u TypeUpdate) (*trustack.VolumeType, error) {
	if err := checkTypeText(deref(u.Name), deref(u.Description), nil); err != nil {
		return nil, err
	}
	return s.store.UpdateVolumeType(ctx, id, func(vt *trustack.VolumeType) error {
		if u.Name != nil && *u.Name != vt.Name {
			if *u.Name == "" {
				return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: a volume type's name cannot be empty.")
			}
			if vt.Name == trustack.DefaultVolumeType {
				return trustack.Reasonf(trustack.EINVALID, "InvalidInput", "Invalid input received: the default volume type %s cannot be renamed.", trustack.DefaultVolumeType)
			}
			vt.Name = *u.Name
		}
		if u.Description != nil {
			vt.Description = *u.Description
		}
		if u.Public != nil {
			vt.Public = *u.Public
		}
		vt.UpdatedAt = s.opts.Now().UTC()
		return nil
	})
}

// DeleteType removes a volume type; EINVALID for the default type or one
// that volumes are of (VolumeTypeInUse), as Cinder's 400.
func (s *Service) DeleteType(ctx context.Context, id string) error {
	vt, err := s.store.VolumeType(ctx, id)
	if err != nil {
		return err
	}
	if vt.Name == trustack.DefaultVolumeType {
		return trustack.Reasonf(trustack.EINVALID, "VolumeTypeDefaultDeletionError", "The volume type %s is the default volume type and cannot be deleted.", id)
	}
	err = s.store.DeleteVolumeType(ctx, id)
	if trustack.ErrorCode(err) == trustack.ECONFLICT {
		return trustack.Reasonf(trustack.EINVALID, "VolumeTypeInUse", "Volume Type %s deletion is not allowed with volumes present with the type.", id)
	}
	return err
}

// SetExtraSpecs sets some of a volume type's extra specs and returns
// them all; a type that volumes are of keeps its specs (EINVALID
// VolumeTypeInUse), since they chose those volumes' backends.
func (s *Service) SetExtraSpecs(ctx context.Context, id string, specs map[string]string) (map[string]string, error) {
	if err := checkTypeText("", "", specs); err != nil {
		return nil, err
	}
	vt, err := s.changeSpecs(ctx, id, func(have map[string]string) error {
		maps.Copy(have, specs)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return vt.ExtraSpecs, nil
}

// UnsetExtraSpec removes an extra spec of a volume type; ENOTFOUND
// (VolumeTypeExtraSpecsNotFound) if it has none of that key.
func (s *Service) UnsetExtraSpec(ctx context.Context, id, key string) error {
	_, err := s.changeSpecs(ctx, id, func(have map[string]string) error {
		if _, ok := have[key]; !ok {
			return trustack.Reasonf(trustack.ENOTFOUND, "VolumeTypeExtraSpecsNotFound", "Volume Type %s has no extra specs with key %s.", id, key)
		}
		delete(have, key)
		return nil
	})
	return err
}

// changeSpecs has fn change the extra specs of a volume type that no
// volume is of.
func (s *Service) changeSpecs(ctx context.Context, id string, fn func(map[string]string) error) (*trustack.VolumeType, error) {
	if _, err := s.store.VolumeType(ctx, id); err != nil {
		return nil, err
	}
	used, err := s.store.Volumes(ctx, trustack.VolumeFilter{TypeID: id})
	if err != nil {
		return nil, err
	}
	if len(used) > 0 {
		return nil, trustack.Reasonf(trustack.EINVALID, "VolumeTypeInUse", "Volume Type %s is in use by volumes: its extra specs cannot change.", id)
	}
	return s.store.UpdateVolumeType(ctx, id, func(vt *trustack.VolumeType) error {
		if vt.ExtraSpecs == nil {
			vt.ExtraSpecs = map[string]string{}
		}
		vt.UpdatedAt = s.opts.Now().UTC()
		return fn(vt.ExtraSpecs)
	})
}

// TypeNames returns every volume type's name, by ID, for showing the
// type of volumes.
func (s *Service) TypeNames(ctx context.Context) (map[string]string, error) {
	all, err := s.store.VolumeTypes(ctx)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(all))
	for _, t := range all {
		names[t.ID] = t.Name
	}
	return names, nil
}
