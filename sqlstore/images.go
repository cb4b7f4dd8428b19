package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/trustack/trustack"
)

var (
	images = &table[trustack.Image]{
		name: "images", kind: "image", order: "created_at DESC, id DESC",
		columns: []string{"id", "name", "status", "visibility", "protected", "os_hidden", "owner", "disk_format", "container_format",
			"size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value", "min_disk", "min_ram", "created_at", "updated_at"},
		fields: func(i *trustack.Image) []any {
			return []any{&i.ID, &i.Name, &i.Status, &i.Visibility, &i.Protected, &i.Hidden, &i.Owner, &i.DiskFormat, &i.ContainerFormat,
				&i.Size, &i.VirtualSize, &i.Checksum, &i.HashAlgo, &i.HashValue, &i.MinDisk, &i.MinRAM, timeColumn{&i.CreatedAt}, timeColumn{&i.UpdatedAt}}
		},
	}
	imageMembers = &table[trustack.ImageMember]{
		name: "image_members", kind: "image member", order: "created_at, member_id",
		columns: []string{"image_id", "member_id", "status", "created_at", "updated_at"},
		fields: func(m *trustack.ImageMember) []any {
			return []any{&m.ImageID, &m.MemberID, &m.Status, timeColumn{&m.CreatedAt}, timeColumn{&m.UpdatedAt}}
		},
	}
)

// imageSortColumns maps the sort keys of image lists to their columns.
var imageSortColumns = map[string]string{
	"name": "name", "status": "status", "container_format": "container_format", "disk_format": "disk_format",
	"size": "size", "id": "id", "created_at": "created_at", "updated_at": "updated_at",
}

// CreateImage adds the image with its properties and tags.
func (db *DB) CreateImage(ctx context.Context, img *trustack.Image) error {
	return db.inTx(ctx, func(tx querier) error {
		if err := images.insert(ctx, tx, img); err != nil {
			return err
		}
		return writeImageExtras(ctx, tx, img)
	})
}

// Image returns the image with its properties and tags, or ENOTFOUND.
func (db *DB) Image(ctx context.Context, id string) (*trustack.Image, error) {
	img, err := images.get(ctx, db.read, id)
	if err != nil {
		return nil, err
	}
	return img, loadImageExtras(ctx, db.read, []*trustack.Image{img})
}

// Images returns the images that match f, in f's order. A sort key it
// does not know, or a marker that names no image, gives EINVALID.
func (db *DB) Images(ctx context.Context, f trustack.ImageFilter) ([]*trustack.Image, error) {
	var w where
	w.eq("name", f.Name)
	w.eq("status", f.Status)
	w.eq("visibility", f.Visibility)
	w.eq("owner", f.Owner)
	w.eq("disk_format", f.DiskFormat)
	w.eq("container_format", f.ContainerFormat)
	w.eq("checksum", f.Checksum)
	w.eq("os_hash_value", f.HashValue)
	w.in("id", f.IDs)
	w.flag("os_hidden", f.Hidden)
	w.flag("protected", f.Protected)
	for _, tag := range f.Tags {
		w.add("id IN (SELECT image_id FROM image_tags WHERE tag = ?)", tag)
	}
	names := make([]string, 0, len(f.Properties))
	for name := range f.Properties {
		names = append(names, name)
	}
	slices.Sort(names) // one query text per set of names, for the statement cache
	for _, name := range names {
		w.add("id IN (SELECT image_id FROM image_properties WHERE name = ? AND value = ?)", name, f.Properties[name])
	}
	// An image without data has no size: a size range leaves it out.
	if f.SizeMin != nil {
		w.add("os_hash_value <> '' AND size >= ?", *f.SizeMin)
	}
	if f.SizeMax != nil {
		w.add("os_hash_value <> '' AND size <= ?", *f.SizeMax)
	}
	if f.ExcludeKilled {
		w.add("status NOT IN (?, ?)", trustack.ImageKilled, trustack.ImageDeleted)
	}
	if f.Viewer != "" {
		members := "SELECT image_id FROM image_members WHERE member_id = ?"
		args := []any{f.Viewer, f.Viewer}
		if f.MemberStatus != "" && f.MemberStatus != "all" {
			members += " AND status = ?"
			args = append(args, f.MemberStatus)
		}
		w.add("(owner = ? OR visibility IN ('public', 'community') OR (visibility = 'shared' AND id IN ("+members+")))", args...)
	}
	if f.HideCommunity {
		w.add("(visibility <> 'community' OR owner = ?)", f.CommunityOwner)
	}
	order, err := imageOrder(f.Sort)
	if err != nil {
		return nil, err
	}
	if f.Marker != "" {
		marker, err := images.get(ctx, db.read, f.Marker)
		if trustack.ErrorCode(err) == trustack.ENOTFOUND {
			return nil, trustack.Errorf(trustack.EINVALID, "The marker image %s could not be found.", f.Marker)
		} else if err != nil {
			return nil, err
		}
		afterMarker(&w, order, marker)
	}
	query := images.selectFrom() + w.sql() + " ORDER BY " + orderBy(order)
	if f.Limit > 0 {
		w.args = append(w.args, f.Limit)
		query += fmt.Sprintf(" LIMIT $%d", len(w.args))
	}
	list, err := scanImages(ctx, db.read, query, w.args)
	if err != nil {
		return nil, err
	}
	return list, loadImageExtras(ctx, db.read, list)
}

// imageOrder returns the full order of a list: the requested keys, then
// created_at and id as tie-breakers, which take the direction shared by
// every requested key, or descending (as Glance does).
func imageOrder(sorts []trustack.ImageSort) ([]trustack.ImageSort, error) {
	desc := true
	for i, s := range sorts {
		if _, ok := imageSortColumns[s.Key]; !ok {
			return nil, trustack.Errorf(trustack.EINVALID, "Invalid sort key: %s.", s.Key)
		}
		if i == 0 {
			desc = s.Desc
		} else if s.Desc != desc {
			desc = true
		}
	}
	order := slices.Clone(sorts)
	for _, key := range []string{"created_at", "id"} {
		if !slices.ContainsFunc(order, func(s trustack.ImageSort) bool { return s.Key == key }) {
			order = append(order, trustack.ImageSort{Key: key, Desc: desc})
		}
	}
	return order, nil
}

func orderBy(order []trustack.ImageSort) string {
	parts := make([]string, len(order))
	for i, s := range order {
		parts[i] = imageSortColumns[s.Key]
		if s.Desc {
			parts[i] += " DESC"
		}
	}
	return strings.Join(parts, ", ")
}

// afterMarker adds the condition that keeps the rows after marker in
// order: greater (or less, descending) on the first key, or equal on it
// and after it on the next, and so on.
func afterMarker(w *where, order []trustack.ImageSort, marker *trustack.Image) {
	values := map[string]any{
		"name": marker.Name, "status": marker.Status, "container_format": marker.ContainerFormat, "disk_format": marker.DiskFormat,
		"size": marker.Size, "id": marker.ID, "created_at": marker.CreatedAt.UnixMicro(), "updated_at": marker.UpdatedAt.UnixMicro(),
	}
	var alternatives []string
	var args []any
	for i, s := range order {
		var conds []string
		for _, prev := range order[:i] {
			conds = append(conds, imageSortColumns[prev.Key]+" = ?")
			args = append(args, values[prev.Key])
		}
		op := " > ?"
		if s.Desc {
			op = " < ?"
		}
		conds = append(conds, imageSortColumns[s.Key]+op)
		args = append(args, values[s.Key])
		alternatives = append(alternatives, "("+strings.Join(conds, " AND ")+")")
	}
	w.add("("+strings.Join(alternatives, " OR ")+")", args...)
}

func scanImages(ctx context.Context, q querier, query string, args []any) ([]*trustack.Image, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	defer rows.Close()
	var out []*trustack.Image
	for rows.Next() {
		img := new(trustack.Image)
		if err := rows.Scan(images.fields(img)...); err != nil {
			return nil, fmt.Errorf("list images: %w", err)
		}
		out = append(out, img)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	return out, nil
}

// imageBatch bounds the IDs in one query that loads properties and tags,
// well below both backends' limits on query arguments.
const imageBatch = 500

// loadImageExtras reads the properties and tags of the images.
func loadImageExtras(ctx context.Context, q querier, list []*trustack.Image) error {
	for start := 0; start < len(list); start += imageBatch {
		batch := list[start:min(start+imageBatch, len(list))]
		byID := make(map[string]*trustack.Image, len(batch))
		ids := make([]string, len(batch))
		for i, img := range batch {
			byID[img.ID], ids[i] = img, img.ID
			img.Properties, img.Tags = nil, nil
		}
		var w where
		w.in("image_id", ids)
		err := scanRows(ctx, q, "SELECT image_id, name, value FROM image_properties"+w.sql()+" ORDER BY image_id, name", w.args, func(s func(...any) error) error {
			var id, name, value string
			if err := s(&id, &name, &value); err != nil {
				return err
			}
			img := byID[id]
			if img.Properties == nil {
				img.Properties = map[string]string{}
			}
			img.Properties[name] = value
			return nil
		})
		if err != nil {
			return fmt.Errorf("load image properties: %w", err)
		}
		err = scanRows(ctx, q, "SELECT image_id, tag FROM image_tags"+w.sql()+" ORDER BY image_id, tag", w.args, func(s func(...any) error) error {
			var id, tag string
			if err := s(&id, &tag); err != nil {
				return err
			}
			byID[id].Tags = append(byID[id].Tags, tag)
			return nil
		})
		if err != nil {
			return fmt.Errorf("load image tags: %w", err)
		}
	}
	return nil
}

// scanRows runs query and calls fn with the Scan of each row.
func scanRows(ctx context.Context, q querier, query string, args []any, fn func(scan func(...any) error) error) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}

// writeImageExtras replaces the stored properties and tags of img with
// its own.
func writeImageExtras(ctx context.Context, tx querier, img *trustack.Image) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM image_properties WHERE image_id = $1`, img.ID); err != nil {
		return fmt.Errorf("write properties of image %s: %w", img.ID, err)
	}
	for name, value := range img.Properties {
		if _, err := tx.ExecContext(ctx, `INSERT INTO image_properties (image_id, name, value) VALUES ($1, $2, $3)`, img.ID, name, value); err != nil {
			return fmt.Errorf("write properties of image %s: %w", img.ID, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM image_tags WHERE image_id = $1`, img.ID); err != nil {
		return fmt.Errorf("write tags of image %s: %w", img.ID, err)
	}
	for _, tag := range img.Tags {
		if _, err := tx.ExecContext(ctx, `INSERT INTO image_tags (image_id, tag) VALUES ($1, $2)`, img.ID, tag); err != nil {
			return fmt.Errorf("write tags of image %s: %w", img.ID, conflict("image tag", translate(err)))
		}
	}
	return nil
}

// UpdateImage reads the image with its properties and tags, lets fn
// change it and writes it back, in one transaction.
func (db *DB) UpdateImage(ctx context.Context, id string, fn func(*trustack.Image) error) (*trustack.Image, error) {
	var img *trustack.Image
	err := db.inTx(ctx, func(tx querier) error {
		var err error
		if img, err = images.getSQL(ctx, tx, id, db.lockRow()); err != nil {
			return err
		}
		if err := loadImageExtras(ctx, tx, []*trustack.Image{img}); err != nil {
			return err
		}
		if err := fn(img); err != nil {
			return err
		}
		if img.ID != id {
			return trustack.Errorf(trustack.EINVALID, "The image ID cannot be changed.")
		}
		sets := make([]string, 0, len(images.columns)-1)
		for i, c := range images.columns[1:] {
			sets = append(sets, fmt.Sprintf("%s = $%d", c, i+2))
		}
		query := "UPDATE images SET " + strings.Join(sets, ", ") + " WHERE id = $1"
		if _, err := tx.ExecContext(ctx, query, images.fields(img)...); err != nil {
			return fmt.Errorf("update image %s: %w", id, err)
		}
		return writeImageExtras(ctx, tx, img)
	})
	if err != nil {
		return nil, err
	}
	return img, nil
}

// DeleteImage deletes the image with its properties, tags and members.
func (db *DB) DeleteImage(ctx context.Context, id string) error {
	return images.delete(ctx, db.write, id)
}

// Image members.

// CreateImageMember shares an image with a project; sharing it twice, or
// an image that does not exist, gives ECONFLICT.
func (db *DB) CreateImageMember(ctx context.Context, m *trustack.ImageMember) error {
	return imageMembers.insert(ctx, db.write, m)
}

// ImageMember returns the membership of a project in an image, or
// ENOTFOUND.
func (db *DB) ImageMember(ctx context.Context, imageID, memberID string) (*trustack.ImageMember, error) {
	return getImageMember(ctx, db.read, imageID, memberID, "")
}

func getImageMember(ctx context.Context, q querier, imageID, memberID, suffix string) (*trustack.ImageMember, error) {
	m := new(trustack.ImageMember)
	err := q.QueryRowContext(ctx, imageMembers.selectFrom()+" WHERE image_id = $1 AND member_id = $2"+suffix, imageID, memberID).Scan(imageMembers.fields(m)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "Could not find member %s of image %s.", memberID, imageID)
	}
	if err != nil {
		return nil, fmt.Errorf("get member %s of image %s: %w", memberID, imageID, err)
	}
	return m, nil
}

// ImageMembers returns the members of an image, oldest first.
func (db *DB) ImageMembers(ctx context.Context, imageID string) ([]*trustack.ImageMember, error) {
	var w where
	w.eq("image_id", imageID)
	return imageMembers.list(ctx, db.read, w)
}

// UpdateImageMember reads a membership, lets fn change it and writes it
// back in one transaction; the image and member IDs cannot change.
func (db *DB) UpdateImageMember(ctx context.Context, imageID, memberID string, fn func(*trustack.ImageMember) error) (*trustack.ImageMember, error) {
	var m *trustack.ImageMember
	err := db.inTx(ctx, func(tx querier) error {
		var err error
		if m, err = getImageMember(ctx, tx, imageID, memberID, db.lockRow()); err != nil {
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
		if m.ImageID != imageID || m.MemberID != memberID {
			return trustack.Errorf(trustack.EINVALID, "The image and member of a membership cannot be changed.")
		}
		_, err = tx.ExecContext(ctx, `UPDATE image_members SET status = $3, created_at = $4, updated_at = $5 WHERE image_id = $1 AND member_id = $2`,
			imageMembers.fields(m)...)
		if err != nil {
			return fmt.Errorf("update member %s of image %s: %w", memberID, imageID, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// DeleteImageMember ends a membership, or gives ENOTFOUND.
func (db *DB) DeleteImageMember(ctx context.Context, imageID, memberID string) error {
	res, err := db.write.ExecContext(ctx, `DELETE FROM image_members WHERE image_id = $1 AND member_id = $2`, imageID, memberID)
	if err != nil {
		return fmt.Errorf("delete member %s of image %s: %w", memberID, imageID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return trustack.Errorf(trustack.ENOTFOUND, "Could not find member %s of image %s.", memberID, imageID)
	}
	return nil
}
