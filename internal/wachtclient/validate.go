package wachtclient

// idSegment validates a Wacht id and returns it ready for a path.
func idSegment(field, id string) (string, error) {
	canonical, ok := ParseID(id)
	if !ok {
		return "", invalidInput("%s must be a Wacht id (a positive decimal number)", field)
	}
	return canonical, nil
}

// slugSegment validates an app slug and returns it ready for a path.
func slugSegment(slug string) (string, error) {
	if !ValidSlug(slug) {
		return "", invalidInput("app slug must be 1 to %d lowercase letters, digits, '_' or '-'", MaxSlugBytes)
	}
	return slug, nil
}
