// Pooling kernels of gozoo's GPU backend, float32 NCHW, grid-stride loops.

// maxpool writes y (planes, oh, ow) and argmax (the index in the plane of
// the window's first maximum; a NaN wins, the last NaN of a window) from x
// (planes, h, w), windows k×k with stride s, padding p (as −∞).
extern "C" __global__ void maxpool(const float* __restrict__ x, float* __restrict__ y, int* __restrict__ argmax,
    int planes, int h, int w, int k, int s, int p, int oh, int ow) {
  long total = (long)planes * oh * ow;
  for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < total; t += (long)gridDim.x * blockDim.x) {
    int ox = (int)(t % ow), oy = (int)((t / ow) % oh);
    long pl = t / ((long)ow * oh);
    const float* xp = x + pl * h * w;
    int y0 = oy * s - p, x0 = ox * s - p;
    int y1 = min(y0 + k, h), x1 = min(x0 + k, w);
    y0 = max(y0, 0);
    x0 = max(x0, 0);
    float best = -__int_as_float(0x7f800000);
    int at = y0 * w + x0;
    for (int iy = y0; iy < y1; iy++) {
      for (int ix = x0; ix < x1; ix++) {
        float v = xp[iy * w + ix];
        if (v > best || v != v) {
          best = v;
          at = iy * w + ix;
        }
      }
    }
    y[t] = best;
    argmax[t] = at;
  }
}

// maxpool_grad overwrites dx (planes, h, w) with the sum of the dy
// (planes, oh, ow) whose argmax is each element, gathered per element in
// output order (no atomics, deterministic).
extern "C" __global__ void maxpool_grad(const float* __restrict__ dy, const int* __restrict__ argmax,
    float* __restrict__ dx, int planes, int h, int w, int k, int s, int p, int oh, int ow) {
  long total = (long)planes * h * w;
  for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < total; t += (long)gridDim.x * blockDim.x) {
    int ix = (int)(t % w), iy = (int)((t / w) % h);
    long pl = t / ((long)w * h);
    int idx = iy * w + ix;
    // Outputs whose window holds (iy, ix): oy·s − p ≤ iy < oy·s − p + k.
    int oy0 = max(0, (iy + p - k + s) / s), oy1 = min(oh - 1, (iy + p) / s);
    int ox0 = max(0, (ix + p - k + s) / s), ox1 = min(ow - 1, (ix + p) / s);
    float sum = 0.0f;
    for (int oy = oy0; oy <= oy1; oy++) {
      for (int ox = ox0; ox <= ox1; ox++) {
        long o = pl * oh * ow + (long)oy * ow + ox;
        if (argmax[o] == idx) sum += dy[o];
      }
    }
    dx[t] = sum;
  }
}

// adaptive_start and adaptive_end are PyTorch's AdaptiveAvgPool2d window
// bounds [start, end) of output cell i of out along an axis of size in.
__device__ int adaptive_start(int i, int in, int out) { return i * in / out; }
__device__ int adaptive_end(int i, int in, int out) { return ((i + 1) * in + out - 1) / out; }

// adaptive_avgpool averages each window of x (planes, h, w) into y
// (planes, oh, ow), summing in double.
extern "C" __global__ void adaptive_avgpool(const float* __restrict__ x, float* __restrict__ y,
    int planes, int h, int w, int oh, int ow) {
  long total = (long)planes * oh * ow;
  for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < total; t += (long)gridDim.x * blockDim.x) {
    int j = (int)(t % ow), i = (int)((t / ow) % oh);
    long pl = t / ((long)ow * oh);
    int r0 = adaptive_start(i, h, oh), r1 = adaptive_end(i, h, oh);
    int c0 = adaptive_start(j, w, ow), c1 = adaptive_end(j, w, ow);
    double sum = 0.0;
    for (int r = r0; r < r1; r++)
      for (int cc = c0; cc < c1; cc++) sum += (double)x[pl * h * w + (long)r * w + cc];
    y[t] = (float)(sum / (double)((r1 - r0) * (c1 - c0)));
  }
}

// adaptive_avgpool_grad overwrites dx (planes, h, w) with the sum of
// dy/(window size) over the output cells whose window holds each element,
// in output order (deterministic).
extern "C" __global__ void adaptive_avgpool_grad(const float* __restrict__ dy, float* __restrict__ dx,
    int planes, int h, int w, int oh, int ow) {
  long total = (long)planes * h * w;
  for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < total; t += (long)gridDim.x * blockDim.x) {
    int cx = (int)(t % w), r = (int)((t / w) % h);
    long pl = t / ((long)w * h);
    float sum = 0.0f;
    for (int i = 0; i < oh; i++) {
      int r0 = adaptive_start(i, h, oh), r1 = adaptive_end(i, h, oh);
      if (r < r0 || r >= r1) continue;
      for (int j = 0; j < ow; j++) {
        int c0 = adaptive_start(j, w, ow), c1 = adaptive_end(j, w, ow);
        if (cx < c0 || cx >= c1) continue;
        sum += dy[pl * oh * ow + (long)i * ow + j] / (float)((r1 - r0) * (c1 - c0));
      }
    }
    dx[t] = sum;
  }
}
