#ifndef VELO_ANONYMISE_MOG_H
#define VELO_ANONYMISE_MOG_H
#ifdef __cplusplus
extern "C" {
#endif
typedef void *VeloMOG;
VeloMOG velo_mog_new(int history, double var_threshold);
int velo_mog_apply(VeloMOG m, const unsigned char *src, int w, int h, unsigned char *fg, double rate);
void velo_mog_close(VeloMOG m);
#ifdef __cplusplus
}
#endif
#endif
