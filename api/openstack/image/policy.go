package image

import "github.com/trustack/trustack/policy"

// Glance's check strings (glance/policies/base.py), from which its image
// rules are made.
const (
	admin                    = "rule:context_is_admin"
	projectMember            = "role:member and project_id:%(project_id)s"
	projectReader            = "role:reader and project_id:%(project_id)s"
	imageMember              = "project_id:%(member_id)s"
	anyVisible               = "(project_id:%(project_id)s or " + imageMember + " or 'community':%(visibility)s or 'public':%(visibility)s or 'shared':%(visibility)s)"
	adminOrProjectMember     = admin + " or (" + projectMember + ")"
	adminOrProjectReader     = admin + " or (" + projectReader + ")"
	adminOrReaderGetImage    = admin + " or (role:reader and " + anyVisible + ")"
	adminOrMemberDownload    = admin + " or (role:member and " + anyVisible + ")"
	adminOrMemberCreateImage = admin + " or (" + projectMember + " and project_id:%(owner)s)"
	adminOrSharedMember      = admin + " or (role:member and " + imageMember + ")"
	adminOrReaderOrShared    = admin + " or role:reader and (project_id:%(project_id)s or " + imageMember + ")"
)

// Policy returns the image API's default rules: Glance's current
// defaults (glance/policies), so that a Glance policy file means the same
// here. Targets carry the image's attributes and properties, with
// project_id for its owner and member_id for the member concerned.
func Policy() []policy.Rule {
	return []policy.Rule{
		{Name: "default", Check: "", Description: "The rule of policies that historically had an empty policy."},
		{Name: "context_is_admin", Check: "role:admin", Description: "Who sees and changes every image, as is_admin:True."},
		{Name: "add_image", Check: adminOrMemberCreateImage, Description: "POST /v2/images"},
		{Name: "delete_image", Check: adminOrProjectMember, Description: "DELETE /v2/images/{image_id}"},
		{Name: "get_image", Check: adminOrReaderGetImage, Description: "GET /v2/images/{image_id}"},
		{Name: "get_images", Check: adminOrProjectReader, Description: "GET /v2/images"},
		{Name: "modify_image", Check: adminOrProjectMember, Description: "PATCH /v2/images/{image_id}, PUT and DELETE /v2/images/{image_id}/tags/{tag}"},
		{Name: "publicize_image", Check: admin, Description: "PATCH /v2/images/{image_id} and POST /v2/images with visibility public"},
		{Name: "communitize_image", Check: adminOrProjectMember, Description: "PATCH /v2/images/{image_id} and POST /v2/images with visibility community"},
		{Name: "download_image", Check: adminOrMemberDownload, Description: "GET /v2/images/{image_id}/file"},
		{Name: "upload_image", Check: adminOrProjectMember, Description: "PUT /v2/images/{image_id}/file"},
		{Name: "add_member", Check: adminOrProjectMember, Description: "POST /v2/images/{image_id}/members"},
		{Name: "delete_member", Check: adminOrProjectMember, Description: "DELETE /v2/images/{image_id}/members/{member_id}"},
		{Name: "get_member", Check: adminOrReaderOrShared, Description: "GET /v2/images/{image_id}/members/{member_id}"},
		{Name: "get_members", Check: adminOrReaderOrShared, Description: "GET /v2/images/{image_id}/members"},
		{Name: "modify_member", Check: adminOrSharedMember, Description: "PUT /v2/images/{image_id}/members/{member_id}"},
		{Name: "deactivate", Check: adminOrProjectMember, Description: "POST /v2/images/{image_id}/actions/deactivate"},
		{Name: "reactivate", Check: adminOrProjectMember, Description: "POST /v2/images/{image_id}/actions/reactivate"},
	}
}
