package masking

// FailElement makes the probe report element name (of role decoder or
// encoder) as failing, as on a gateway whose hardware block is gone;
// restore undoes it.
func FailElement(name, role string) (restore func()) {
	base := ProbeElements()
	e := &Elements{TookMS: base.TookMS}
	for _, s := range base.List {
		if s.Name == name && s.Role == role {
			s.OK, s.Detail = false, "failed (test)"
		}
		e.List = append(e.List, s)
	}
	override.Store(e)
	return func() { override.Store(nil) }
}
