package image

import (
	"net/http"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
)

func (h *handler) listMembers(w http.ResponseWriter, r *http.Request) error {
	c := h.caller(r)
	img, err := h.image(r, c, "get_members")
	if err != nil {
		return err
	}
	members, err := h.svc.Members(r.Context(), c, img.ID)
	if err != nil {
		return err
	}
	views := make([]object, 0, len(members))
	for _, m := range members {
		if h.api.Allowed(r, "get_member", target(img, m.MemberID)) {
			views = append(views, memberView(m))
		}
	}
	openstack.JSON(w, http.StatusOK, object{"members": views, "schema": "/v2/schemas/members"})
	return nil
}

func (h *handler) addMember(w http.ResponseWriter, r *http.Request) error {
	c := h.caller(r)
	var body struct {
		Member *string `json:"member"`
	}
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	if body.Member == nil {
		return invalid("Member to be added not specified")
	}
	img, err := h.image(r, c, "add_member")
	if err != nil {
		return err
	}
	m, err := h.svc.AddMember(r.Context(), c, img.ID, *body.Member)
	if err != nil {
		return limitError(err)
	}
	openstack.JSON(w, http.StatusOK, memberView(m))
	return nil
}

// member returns the image of the request's path after asking the policy
// for rule about the member of the path.
func (h *handler) member(r *http.Request, rule string) (*trustack.Image, error) {
	c := h.caller(r)
	img, err := h.image(r, c, "get_image")
	if err != nil {
		return nil, err
	}
	return img, h.authorize(r, rule, img, r.PathValue("member_id"))
}

func (h *handler) showMember(w http.ResponseWriter, r *http.Request) error {
	img, err := h.member(r, "get_member")
	if trustack.ErrorCode(err) == trustack.EFORBIDDEN {
		// As Glance: a membership one may not see is not there.
		return trustack.Errorf(trustack.ENOTFOUND, "%s not found in the member list of the image %s.", r.PathValue("member_id"), r.PathValue("image_id"))
	} else if err != nil {
		return err
	}
	m, err := h.svc.Member(r.Context(), h.caller(r), img.ID, r.PathValue("member_id"))
	if err != nil {
		return err
	}
	openstack.JSON(w, http.StatusOK, memberView(m))
	return nil
}

func (h *handler) updateMember(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Status *string `json:"status"`
	}
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	if body.Status == nil {
		return invalid("Status not specified")
	}
	img, err := h.member(r, "modify_member")
	if err != nil {
		return err
	}
	m, err := h.svc.UpdateMember(r.Context(), h.caller(r), img.ID, r.PathValue("member_id"), *body.Status)
	if err != nil {
		return err
	}
	openstack.JSON(w, http.StatusOK, memberView(m))
	return nil
}

func (h *handler) deleteMember(w http.ResponseWriter, r *http.Request) error {
	img, err := h.member(r, "delete_member")
	if err != nil {
		return err
	}
	return noContent(w, h.svc.DeleteMember(r.Context(), h.caller(r), img.ID, r.PathValue("member_id")))
}
