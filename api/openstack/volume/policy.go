package volume

import "github.com/trustack/trustack/policy"

// Cinder's check strings (cinder/policies/base.py): an administrator of
// the cloud, and a project's reader or member.
const (
	adminAPI      = "rule:admin_api"
	projectReader = "rule:xena_system_admin_or_project_reader"
	projectMember = "rule:xena_system_admin_or_project_member"
)

// Policy returns the volume API's default rules: Cinder's defaults of
// release 2024.1 (cinder/policies) with its new defaults enforced, those
// of the operations and attributes trustack implements, so that a Cinder
// policy file means the same here. Targets carry the project_id of the
// volume, or of the project whose quotas are asked for.
func Policy() []policy.Rule {
	rule := func(name, check, description string) policy.Rule {
		return policy.Rule{Name: name, Check: check, Description: description}
	}
	return []policy.Rule{
		rule("context_is_admin", "role:admin", "Decides what is required for the 'is_admin:True' check to succeed."),
		rule("admin_api", "is_admin:True or (role:admin and is_admin_project:True)", "Default rule for most Admin APIs."),
		rule("xena_system_admin_or_project_reader", "(role:admin) or (role:reader and project_id:%(project_id)s)", "An administrator, or a reader of the project"),
		rule("xena_system_admin_or_project_member", "(role:admin) or (role:member and project_id:%(project_id)s)", "An administrator, or a member of the project"),

		rule("volume:create", projectMember, "POST /volumes"),
		rule("volume:get", projectReader, "GET /volumes/{volume_id}, GET /volumes/{volume_id}/os-trustack-image-copy"),
		rule("volume:get_all", projectReader, "GET /volumes, GET /volumes/detail, GET /volumes/summary"),
		rule("volume:update", projectMember, "PUT /volumes/{volume_id}, POST /volumes/{volume_id}/action (os-set_bootable)"),
		rule("volume:delete", projectMember, "DELETE /volumes/{volume_id}"),
		rule("volume:force_delete", adminAPI, "DELETE /volumes/{volume_id}?force=true"),
		rule("volume:extend", projectMember, "POST /volumes/{volume_id}/action (os-extend)"),
		rule("volume:extend_attached_volume", projectMember, "POST /volumes/{volume_id}/action (os-extend) of a volume in use, from 3.42"),
		rule("volume:retype", projectMember, "POST /volumes/{volume_id}/action (os-retype)"),
		rule("volume:revert_to_snapshot", projectMember, "POST /volumes/{volume_id}/action (revert)"),
		rule("volume_extension:volume_host_attribute", adminAPI, "Show os-vol-host-attr:host in GET /volumes/{volume_id} and /volumes/detail"),
		rule("volume_extension:volume_tenant_attribute", projectReader, "Show os-vol-tenant-attr:tenant_id in GET /volumes/{volume_id} and /volumes/detail"),
		rule("volume_extension:volume_mig_status_attribute", adminAPI, "Show os-vol-mig-status-attr:* in GET /volumes/{volume_id} and /volumes/detail"),
		rule("volume_extension:volume_image_metadata:show", projectReader, "Show volume_image_metadata in GET /volumes/{volume_id} and /volumes/detail"),
		rule("volume_extension:volume_image_metadata:set", projectMember, "POST /volumes/{volume_id}/action (os-set_image_metadata)"),
		rule("volume_extension:volume_image_metadata:remove", projectMember, "POST /volumes/{volume_id}/action (os-unset_image_metadata)"),
		rule("volume_extension:volume_admin_actions:reset_status", adminAPI, "POST /volumes/{volume_id}/action (os-reset_status)"),
		rule("volume_extension:volume_admin_actions:force_delete", adminAPI, "POST /volumes/{volume_id}/action (os-force_delete)"),
		rule("volume_extension:volume_admin_actions:force_detach", adminAPI, "POST /volumes/{volume_id}/action (os-force_detach)"),
		rule("volume_extension:volume_actions:reserve", projectMember, "POST /volumes/{volume_id}/action (os-reserve)"),
		rule("volume_extension:volume_actions:unreserve", projectMember, "POST /volumes/{volume_id}/action (os-unreserve)"),
		rule("volume_extension:volume_actions:attach", projectMember, "POST /volumes/{volume_id}/action (os-attach)"),
		rule("volume_extension:volume_actions:begin_detaching", projectMember, "POST /volumes/{volume_id}/action (os-begin_detaching)"),
		rule("volume_extension:volume_actions:roll_detaching", projectMember, "POST /volumes/{volume_id}/action (os-roll_detaching)"),
		rule("volume_extension:volume_actions:detach", projectMember, "POST /volumes/{volume_id}/action (os-detach)"),
		rule("volume:update_readonly_flag", projectMember, "POST /volumes/{volume_id}/action (os-update_readonly_flag)"),
		rule("volume_extension:volume_actions:upload_image", projectMember, "POST /volumes/{volume_id}/action (os-volume_upload_image)"),
		rule("volume_extension:volume_actions:upload_public", adminAPI, "POST /volumes/{volume_id}/action (os-volume_upload_image with visibility public)"),

		rule("volume:get_volume_metadata", projectReader, "GET /volumes/{volume_id}/metadata, GET /volumes/{volume_id}/metadata/{key}"),
		rule("volume:create_volume_metadata", projectMember, "POST /volumes/{volume_id}/metadata"),
		rule("volume:update_volume_metadata", projectMember, "PUT /volumes/{volume_id}/metadata, PUT /volumes/{volume_id}/metadata/{key}"),
		rule("volume:delete_volume_metadata", projectMember, "DELETE /volumes/{volume_id}/metadata/{key}"),

		rule("volume_extension:type_create", adminAPI, "POST /types"),
		rule("volume_extension:type_update", adminAPI, "PUT /types/{type_id}"),
		rule("volume_extension:type_delete", adminAPI, "DELETE /types/{type_id}"),
		rule("volume_extension:type_get", projectReader, "GET /types/{type_id}"),
		rule("volume_extension:type_get_all", projectReader, "GET /types"),
		rule("volume_extension:access_types_extra_specs", projectReader, "Show extra_specs in GET /types and /types/{type_id}"),
		rule("volume_extension:volume_type_access:addProjectAccess", adminAPI, "POST /types/{type_id}/action (addProjectAccess)"),
		rule("volume_extension:volume_type_access:removeProjectAccess", adminAPI, "POST /types/{type_id}/action (removeProjectAccess)"),
		rule("volume_extension:volume_type_access:get_all_for_type", adminAPI, "GET /types/{type_id}/os-volume-type-access"),
		rule("volume_extension:volume_type_access", projectMember, "Show os-volume-type-access:is_public in GET /types, GET /types/{type_id} and POST /types"),
		rule("volume_extension:types_extra_specs:index", projectReader, "GET /types/{type_id}/extra_specs"),
		rule("volume_extension:types_extra_specs:show", projectReader, "GET /types/{type_id}/extra_specs/{extra_spec_key}"),
		rule("volume_extension:types_extra_specs:create", adminAPI, "POST /types/{type_id}/extra_specs"),
		rule("volume_extension:types_extra_specs:update", adminAPI, "PUT /types/{type_id}/extra_specs/{extra_spec_key}"),
		rule("volume_extension:types_extra_specs:delete", adminAPI, "DELETE /types/{type_id}/extra_specs/{extra_spec_key}"),
		rule("volume_extension:types_extra_specs:read_sensitive", adminAPI, "Show the extra specs users are not shown (all but multiattach, RESKEY:availability_zones and replication_enabled)"),

		rule("volume:create_snapshot", projectMember, "POST /snapshots"),
		rule("volume:get_snapshot", projectReader, "GET /snapshots/{snapshot_id}"),
		rule("volume:get_all_snapshots", projectReader, "GET /snapshots, GET /snapshots/detail"),
		rule("volume:update_snapshot", projectMember, "PUT /snapshots/{snapshot_id}"),
		rule("volume:delete_snapshot", projectMember, "DELETE /snapshots/{snapshot_id}"),
		rule("volume_extension:extended_snapshot_attributes", projectReader, "Show os-extended-snapshot-attributes:* in GET /snapshots/{snapshot_id} and /snapshots/detail"),
		rule("volume_extension:snapshot_admin_actions:reset_status", adminAPI, "POST /snapshots/{snapshot_id}/action (os-reset_status)"),
		rule("volume_extension:snapshot_admin_actions:force_delete", adminAPI, "POST /snapshots/{snapshot_id}/action (os-force_delete)"),
		rule("snapshot_extension:snapshot_actions:update_snapshot_status", projectMember, "POST /snapshots/{snapshot_id}/action (update_snapshot_status)"),
		rule("volume:get_snapshot_metadata", projectReader, "GET /snapshots/{snapshot_id}/metadata, GET /snapshots/{snapshot_id}/metadata/{key}"),
		rule("volume:update_snapshot_metadata", projectMember, "POST /snapshots/{snapshot_id}/metadata, PUT /snapshots/{snapshot_id}/metadata/{key}"),
		rule("volume:delete_snapshot_metadata", projectMember, "DELETE /snapshots/{snapshot_id}/metadata/{key}"),

		rule("volume_extension:quotas:show", projectReader, "GET /os-quota-sets/{project_id}, GET /os-quota-sets/{project_id}/defaults"),
		rule("volume_extension:quotas:update", adminAPI, "PUT /os-quota-sets/{project_id}"),
		rule("volume_extension:quotas:delete", adminAPI, "DELETE /os-quota-sets/{project_id}"),
		rule("limits_extension:used_limits", projectReader, "Show what is used in GET /limits"),

		rule("volume_extension:services:index", adminAPI, "GET /os-services"),

		rule("message:get_all", projectReader, "GET /messages"),
		rule("message:get", projectReader, "GET /messages/{message_id}"),
		rule("message:delete", projectMember, "DELETE /messages/{message_id}"),
		rule("volume_extension:services:update", adminAPI, "PUT /os-services/{action} (set-log, get-log)"),

		rule("volume:attachment_create", projectMember, "POST /attachments"),
		rule("volume:attachment_update", projectMember, "PUT /attachments/{attachment_id}"),
		rule("volume:attachment_delete", projectMember, "DELETE /attachments/{attachment_id}"),
		rule("volume:attachment_complete", projectMember, "POST /attachments/{attachment_id}/action (os-complete)"),
	}
}
