// Command labeltool proposes person boxes on frames of a clip and renders
// them, numbered, over a 50-pixel grid to PNG, for labelling by eye (see
// ../README.md). It is a helper for making test data, not part of Velo.
//
//	go run ./masking/anonymise/testdata/labeltool -in vtest.avi -every 10 -n 60 -out /tmp/lab
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/color"
	"log"
	"os"
	"path/filepath"

	"gocv.io/x/gocv"
)

var (
	useHOG = flag.Bool("hog", false, "also propose HOG detections")
	faces  = flag.String("faces", "", "propose faces with this Haar cascade instead of people")
)

func main() {
	in := flag.String("in", "", "clip")
	every := flag.Int("every", 10, "label every Nth frame")
	n := flag.Int("n", 60, "frames to label")
	out := flag.String("out", "/tmp/lab", "output dir")
	labels := flag.String("labels", "", "draw these labels (JSON) instead of proposals")
	flag.Parse()
	var given map[string][][4]int
	if *labels != "" {
		b, err := os.ReadFile(*labels)
		if err != nil {
			log.Fatal(err)
		}
		var lf struct {
			Frames map[string][][4]int `json:"frames"`
		}
		if err := json.Unmarshal(b, &lf); err != nil {
			log.Fatal(err)
		}
		given = lf.Frames
	}
	os.MkdirAll(*out, 0o755)
	vc, err := gocv.OpenVideoCapture(*in)
	if err != nil {
		log.Fatal(err)
	}
	mog := gocv.NewBackgroundSubtractorMOG2WithParams(300, 16, true)
	hog := gocv.NewHOGDescriptor()
	hog.SetSVMDetector(gocv.HOGDefaultPeopleDetector())
	img, fg := gocv.NewMat(), gocv.NewMat()
	props := map[string][][4]int{}
	for i := 0; i < *every**n; i++ {
		if !vc.Read(&img) {
			break
		}
		mog.Apply(img, &fg)
		if i%*every != 0 {
			continue
		}
		var rs []image.Rectangle
		key := fmt.Sprint(i)
		if given != nil {
			for _, b := range given[key] {
				rs = append(rs, image.Rect(b[0], b[1], b[2], b[3]))
			}
		} else if *faces != "" {
			rs = proposeFaces(img, *faces)
		} else {
			rs = propose(img, fg, hog)
		}
		for _, r := range rs {
			props[key] = append(props[key], [4]int{r.Min.X, r.Min.Y, r.Max.X, r.Max.Y})
		}
		draw(img.Clone(), rs, filepath.Join(*out, fmt.Sprintf("f%04d.png", i)))
	}
	b, _ := json.MarshalIndent(props, "", " ")
	os.WriteFile(filepath.Join(*out, "proposals.json"), b, 0o644)
}

func propose(img, fg gocv.Mat, hog gocv.HOGDescriptor) []image.Rectangle {
	var rs []image.Rectangle
	if *useHOG {
		rs = hog.DetectMultiScaleWithParams(img, 0, image.Pt(8, 8), image.Pt(8, 8), 1.1, 2, false)
	}
	m := gocv.NewMat()
	gocv.Threshold(fg, &m, 200, 255, gocv.ThresholdBinary)
	k := gocv.GetStructuringElement(gocv.MorphEllipse, image.Pt(5, 5))
	gocv.MorphologyEx(m, &m, gocv.MorphOpen, k)
	gocv.DilateWithParams(m, &m, k, image.Pt(-1, -1), 2, gocv.BorderConstant, color.RGBA{})
	cs := gocv.FindContours(m, gocv.RetrievalExternal, gocv.ChainApproxSimple)
	for i := 0; i < cs.Size(); i++ {
		r := gocv.BoundingRect(cs.At(i))
		if r.Dx()*r.Dy() > 400 {
			rs = append(rs, r)
		}
	}
	return rs
}

func draw(img gocv.Mat, rs []image.Rectangle, path string) {
	for x := 0; x < img.Cols(); x += 50 {
		gocv.Line(&img, image.Pt(x, 0), image.Pt(x, img.Rows()), color.RGBA{80, 80, 80, 0}, 1)
		gocv.PutText(&img, fmt.Sprint(x), image.Pt(x+1, 10), gocv.FontHersheyPlain, 0.7, color.RGBA{255, 255, 0, 0}, 1)
	}
	for y := 0; y < img.Rows(); y += 50 {
		gocv.Line(&img, image.Pt(0, y), image.Pt(img.Cols(), y), color.RGBA{80, 80, 80, 0}, 1)
		gocv.PutText(&img, fmt.Sprint(y), image.Pt(1, y+10), gocv.FontHersheyPlain, 0.7, color.RGBA{255, 255, 0, 0}, 1)
	}
	for i, r := range rs {
		gocv.Rectangle(&img, r, color.RGBA{0, 0, 255, 0}, 1)
		gocv.PutText(&img, fmt.Sprint(i), image.Pt(r.Min.X+2, r.Min.Y+12), gocv.FontHersheyPlain, 1, color.RGBA{0, 255, 0, 0}, 1)
	}
	gocv.IMWrite(path, img)
}

func proposeFaces(img gocv.Mat, cascade string) []image.Rectangle {
	c := gocv.NewCascadeClassifier()
	defer c.Close()
	if !c.Load(cascade) {
		log.Fatalf("cascade %s", cascade)
	}
	g := gocv.NewMat()
	defer g.Close()
	gocv.CvtColor(img, &g, gocv.ColorBGRToGray)
	return c.DetectMultiScaleWithParams(g, 1.1, 3, 0, image.Pt(20, 20), image.Point{})
}
