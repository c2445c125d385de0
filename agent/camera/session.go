// Package camera opens a configured camera's session: the ONVIF client with
// the camera's own credentials, the identity check by serial (nothing of
// another device is ever streamed or previewed), the media profile and its
// stream URI (pinned to the camera's host; never an RTSP server that takes
// only Basic), and the capture settings for the frame path.
package camera

import (
	"context"
	"fmt"
	"time"

	"velo/agent/config"
	"velo/masking"
	"velo/masking/codec"
	"velo/onvif"
)

// requestTimeout bounds each ONVIF request to a camera.
const requestTimeout = 10 * time.Second

// Connect opens the camera over ONVIF and checks it is the configured
// device: a serial that does not match is an error. The caller closes the
// client's idle connections when done.
func Connect(ctx context.Context, c *config.CameraConfig) (*onvif.Client, onvif.DeviceInfo, error) {
	cl, err := onvif.NewClient(onvif.Config{XAddr: c.XAddr, Username: c.Username, Password: c.Password.Reveal(), Timeout: requestTimeout})
	if err != nil {
		return nil, onvif.DeviceInfo{}, err
	}
	fail := func(err error) (*onvif.Client, onvif.DeviceInfo, error) {
		cl.CloseIdleConnections()
		return nil, onvif.DeviceInfo{}, err
	}
	if err := cl.Connect(ctx); err != nil {
		return fail(err)
	}
	info, err := cl.GetDeviceInformation(ctx)
	if err != nil {
		return fail(err)
	}
	if m := c.Match.Serial; m != "" && info.SerialNumber != m {
		return fail(fmt.Errorf("camera %q: serial %q at %s, config expects %q: not streaming", c.ID, info.SerialNumber, config.RedactURL(c.XAddr), m))
	}
	return cl, info, nil
}

// ResolveStream finds the profile (token, or the first when empty) and its
// RTSP URI, checked by CheckStream: a URI naming another host than the
// camera's, or an RTSP server offering only Basic, is a *RefusedError.
func ResolveStream(ctx context.Context, cl *onvif.Client, camera, profile string) (string, *onvif.Profile, error) {
	profiles, err := cl.GetProfiles(ctx)
	if err != nil {
		return "", nil, err
	}
	for i := range profiles {
		if profile == "" || profiles[i].Token == profile {
			uri, err := cl.GetStreamURI(ctx, profiles[i].Token)
			if err != nil {
				return "", nil, err
			}
			if err := CheckStream(ctx, camera, cl.XAddr(), uri); err != nil {
				return "", nil, err
			}
			return uri, &profiles[i], nil
		}
	}
	return "", nil, fmt.Errorf("camera %q: profile %q not found", camera, profile)
}

// Capture returns the capture settings for the camera's stream uri, with
// the camera's own credentials.
func Capture(c *config.CameraConfig, uri string) masking.CaptureConfig {
	return masking.CaptureConfig{URL: uri, Username: c.Username, Password: c.Password.Reveal()}
}

// StreamCodec is the codec the camera's profile says it streams: Media2's
// video encoder configuration where the camera has Media2 (the only place
// an H.265 camera may say H265), else the Media profile's encoding; "" when
// neither names H.264 or H.265 (the stream's SDP then decides alone).
// note says where it came from, or why Media2 was not used.
func StreamCodec(ctx context.Context, cl *onvif.Client, prof *onvif.Profile) (c codec.Codec, note string) {
	if cl.HasService(onvif.NSMedia2) {
		vecs, err := cl.GetVideoEncoderConfigurations2(ctx, prof.Token)
		if err == nil && len(vecs) > 0 {
			if c, err := codec.Parse(vecs[0].Encoding); err == nil {
				return c, "Media2 video encoder configuration"
			}
			note = fmt.Sprintf("Media2 says %q; ", vecs[0].Encoding)
		} else if err != nil {
			note = "Media2 GetVideoEncoderConfigurations failed; "
		}
	}
	if prof.Encoder != nil {
		if c, err := codec.Parse(prof.Encoder.Encoding); err == nil {
			return c, note + "Media profile"
		}
		note += fmt.Sprintf("Media profile says %q", prof.Encoder.Encoding)
	}
	return "", note
}

// ProfileFPS is the frame rate the profile's encoder is set to (0:
// unknown).
func ProfileFPS(prof *onvif.Profile) int {
	if prof == nil || prof.Encoder == nil || prof.Encoder.RateControl == nil {
		return 0
	}
	fps := prof.Encoder.RateControl.FrameRateLimit
	if i := prof.Encoder.RateControl.EncodingInterval; i > 1 {
		fps /= i
	}
	if fps < 1 || fps > 120 {
		return 0
	}
	return fps
}
