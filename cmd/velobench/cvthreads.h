#ifndef VELOBENCH_CVTHREADS_H
#define VELOBENCH_CVTHREADS_H
#ifdef __cplusplus
extern "C" {
#endif
void velobench_set_cv_threads(int n);
int velobench_get_cv_threads(void);
#ifdef __cplusplus
}
#endif
#endif
