// Package codec is the table of video codecs and GStreamer codec elements
// the frame path may use: for H.264 and H.265, the RTP depayloader and
// parser, the decoders and encoders in order of preference (hardware
// first, software last), and for every encoder how the bitrate, GOP and
// frame rate map to its own properties and units. It holds no OpenCV and
// starts nothing, so the config validator can check an encoder string
// with it; masking probes which of these elements work on the gateway.
package codec

import (
	"fmt"
	"strings"
)

// Codec is a video compression standard, named as ONVIF names it.
type Codec string

// Codecs.
const (
	H264 Codec = "H264"
	H265 Codec = "H265"
)

// All lists the codecs, H.264 first (the default output).
var All = []Codec{H264, H265}

// Parse reads a codec name as cameras, SDPs and configs write it:
// H264, h264, H.264, AVC; H265, h265, H.265, HEVC.
func Parse(s string) (Codec, error) {
	switch strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), ".", "")) {
	case "H264", "AVC":
		return H264, nil
	case "H265", "HEVC":
		return H265, nil
	}
	return "", fmt.Errorf("codec %q: want H264 or H265", s)
}

// lower is "h264" or "h265", as GStreamer's element names spell it.
func (c Codec) lower() string { return strings.ToLower(string(c)) }

// Depay is the RTP depayloader element.
func (c Codec) Depay() string { return "rtp" + c.lower() + "depay" }

// Parser is the parser element.
func (c Codec) Parser() string { return c.lower() + "parse" }

// ByteStreamCaps are the caps of the codec's Annex B byte stream, one
// access unit per buffer.
func (c Codec) ByteStreamCaps() string {
	return "video/x-" + c.lower() + ",stream-format=byte-stream,alignment=au"
}

// Unit is the unit an encoder element takes its bitrate in.
type Unit int

// Bitrate units.
const (
	Kbps Unit = 1000 // kbit/s
	Bps  Unit = 1    // bit/s
)

func (u Unit) String() string {
	if u == Bps {
		return "bit/s"
	}
	return "kbit/s"
}

// Element is one GStreamer codec element of the table.
type Element struct {
	// Name is the element's factory name (gst-inspect-1.0 NAME).
	Name string
	// Codec is what it decodes or encodes.
	Codec Codec
	// Family: "v4l2 stateless", "v4l2 stateful", "rockchip mpp",
	// "vaapi", "nvidia jetson", "nvidia", "software".
	Family string
	// Encoder: an encoder; else a decoder.
	Encoder bool
	// Template is the element with its properties. An encoder's names its
	// settings by placeholder: {bitrate_kbps}, {bitrate_bps}, {bitrate}
	// (in Unit), {gop} (frames), {fps}.
	Template string
	// Unit is the encoder's bitrate unit (what {bitrate} means for it).
	Unit Unit
}

// Hardware reports whether the element runs on a hardware codec block.
func (e Element) Hardware() bool { return e.Family != "software" }

// decoders: hardware first, software last. Each outputs raw video that a
// videoconvert turns into I420 (a no-op for software decoders).
var decoders = []Element{
	{Name: "v4l2slh264dec", Codec: H264, Family: "v4l2 stateless", Template: "v4l2slh264dec"},
	{Name: "v4l2h264dec", Codec: H264, Family: "v4l2 stateful", Template: "v4l2h264dec"},
	{Name: "mppvideodec", Codec: H264, Family: "rockchip mpp", Template: "mppvideodec"},
	{Name: "vaapih264dec", Codec: H264, Family: "vaapi", Template: "vaapih264dec"},
	{Name: "nvh264dec", Codec: H264, Family: "nvidia", Template: "nvh264dec"},
	{Name: "avdec_h264", Codec: H264, Family: "software", Template: "avdec_h264 output-corrupt=false max-threads=1"},

	{Name: "v4l2slh265dec", Codec: H265, Family: "v4l2 stateless", Template: "v4l2slh265dec"},
	{Name: "v4l2h265dec", Codec: H265, Family: "v4l2 stateful", Template: "v4l2h265dec"},
	{Name: "mppvideodec", Codec: H265, Family: "rockchip mpp", Template: "mppvideodec"},
	{Name: "vaapih265dec", Codec: H265, Family: "vaapi", Template: "vaapih265dec"},
	{Name: "nvh265dec", Codec: H265, Family: "nvidia", Template: "nvh265dec"},
	{Name: "avdec_h265", Codec: H265, Family: "software", Template: "avdec_h265 output-corrupt=false max-threads=1"},
}

// encoders: hardware first, software last, each with its own property
// names and units (gst-inspect-1.0 of each element; v4l2 encoders take
// V4L2 controls, in bit/s).
var encoders = []Element{
	{Name: "v4l2h264enc", Codec: H264, Family: "v4l2 stateful", Unit: Bps,
		Template: `v4l2h264enc extra-controls="controls,video_bitrate={bitrate_bps},h264_i_frame_period={gop},repeat_sequence_header=1"`},
	{Name: "mpph264enc", Codec: H264, Family: "rockchip mpp", Unit: Bps,
		Template: "mpph264enc rc-mode=cbr bps={bitrate_bps} gop={gop}"},
	{Name: "vaapih264enc", Codec: H264, Family: "vaapi", Unit: Kbps,
		Template: "vaapih264enc rate-control=cbr bitrate={bitrate_kbps} keyframe-period={gop}"},
	{Name: "nvv4l2h264enc", Codec: H264, Family: "nvidia jetson", Unit: Bps,
		Template: "nvv4l2h264enc bitrate={bitrate_bps} iframeinterval={gop} insert-sps-pps=true"},
	{Name: "nvh264enc", Codec: H264, Family: "nvidia", Unit: Kbps,
		Template: "nvh264enc rc-mode=cbr bitrate={bitrate_kbps} gop-size={gop} zerolatency=true"},
	{Name: "x264enc", Codec: H264, Family: "software", Unit: Kbps,
		Template: "x264enc tune=zerolatency speed-preset=ultrafast bitrate={bitrate_kbps} key-int-max={gop} byte-stream=true"},
	{Name: "openh264enc", Codec: H264, Family: "software", Unit: Bps,
		Template: "openh264enc rate-control=bitrate bitrate={bitrate_bps} gop-size={gop}"},

	{Name: "v4l2h265enc", Codec: H265, Family: "v4l2 stateful", Unit: Bps,
		Template: `v4l2h265enc extra-controls="controls,video_bitrate={bitrate_bps},video_gop_size={gop},repeat_sequence_header=1"`},
	{Name: "mpph265enc", Codec: H265, Family: "rockchip mpp", Unit: Bps,
		Template: "mpph265enc rc-mode=cbr bps={bitrate_bps} gop={gop}"},
	{Name: "vaapih265enc", Codec: H265, Family: "vaapi", Unit: Kbps,
		Template: "vaapih265enc rate-control=cbr bitrate={bitrate_kbps} keyframe-period={gop}"},
	{Name: "nvv4l2h265enc", Codec: H265, Family: "nvidia jetson", Unit: Bps,
		Template: "nvv4l2h265enc bitrate={bitrate_bps} iframeinterval={gop} insert-sps-pps=true"},
	{Name: "nvh265enc", Codec: H265, Family: "nvidia", Unit: Kbps,
		Template: "nvh265enc rc-mode=cbr bitrate={bitrate_kbps} gop-size={gop} zerolatency=true"},
	{Name: "x265enc", Codec: H265, Family: "software", Unit: Kbps,
		Template: "x265enc tune=zerolatency speed-preset=ultrafast bitrate={bitrate_kbps} key-int-max={gop}"},
}

func init() {
	for i := range encoders {
		encoders[i].Encoder = true
	}
}

// Decoders lists c's decoders in order of preference.
func Decoders(c Codec) []Element { return filter(decoders, c) }

// Encoders lists c's encoders in order of preference.
func Encoders(c Codec) []Element { return filter(encoders, c) }

func filter(list []Element, c Codec) []Element {
	var out []Element
	for _, e := range list {
		if e.Codec == c {
			out = append(out, e)
		}
	}
	return out
}

// LookupEncoder finds an encoder of the table by element name.
func LookupEncoder(name string) (Element, bool) {
	for _, e := range encoders {
		if e.Name == name {
			return e, true
		}
	}
	return Element{}, false
}

// LookupDecoder finds c's decoder of the table by element name.
func LookupDecoder(c Codec, name string) (Element, bool) {
	for _, e := range Decoders(c) {
		if e.Name == name {
			return e, true
		}
	}
	return Element{}, false
}
