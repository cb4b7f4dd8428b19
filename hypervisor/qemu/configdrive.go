package qemu

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/trustack/trustack/wire"
)

// metaData is openstack/latest/meta_data.json of a config drive, with the
// fields cloud-init reads, as Nova writes them.
type metaData struct {
	UUID       string            `json:"uuid"`
	Name       string            `json:"name"`
	Hostname   string            `json:"hostname"`
	ProjectID  string            `json:"project_id"`
	Meta       map[string]string `json:"meta"`
	PublicKeys map[string]string `json:"public_keys,omitempty"`
	Keys       []metaKey         `json:"keys,omitempty"`
}

type metaKey struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Data string `json:"data"`
}

// writeConfigDrive makes the server's config drive at path: an ISO 9660
// image labelled config-2 holding openstack/latest/meta_data.json and,
// if the server has any, user_data, built with genisoimage as Nova does.
func writeConfigDrive(ctx context.Context, spec wire.Spec, path string) error {
	root, err := os.MkdirTemp(filepath.Dir(path), ".configdrive-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	latest := filepath.Join(root, "openstack", "latest")
	if err := os.MkdirAll(latest, 0o755); err != nil {
		return err
	}
	md := metaData{UUID: spec.ServerID, Name: spec.Name, Hostname: spec.Hostname, ProjectID: spec.ProjectID, Meta: spec.Metadata}
	if md.Meta == nil {
		md.Meta = map[string]string{}
	}
	if spec.KeyData != "" {
		md.PublicKeys = map[string]string{spec.KeyName: spec.KeyData}
		md.Keys = []metaKey{{Name: spec.KeyName, Type: "ssh", Data: spec.KeyData}}
	}
	b, err := json.Marshal(md)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(latest, "meta_data.json"), b, 0o644); err != nil {
		return err
	}
	if spec.UserData != "" {
		data, err := base64.StdEncoding.DecodeString(spec.UserData)
		if err != nil {
			return fmt.Errorf("user data: %w", err)
		}
		if err := os.WriteFile(filepath.Join(latest, "user_data"), data, 0o644); err != nil {
			return err
		}
	}
	out, err := exec.CommandContext(ctx, "genisoimage", "-o", path, "-V", "config-2", "-J", "-r", "-quiet", root).CombinedOutput()
	if err != nil {
		return fmt.Errorf("genisoimage: %v: %s", err, out)
	}
	return nil
}
