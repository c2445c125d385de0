package masking

import "velo/masking/gstapp"

// GstOpenCV reports whether VELO_GST_PATH=opencv selected the former gocv
// path for the GStreamer backend.
func GstOpenCV() bool { return gstOpenCV }

// LivePipelines is how many gstapp pipelines are alive.
func LivePipelines() int { return gstapp.Live() }

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
