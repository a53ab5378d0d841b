// Optimizer updates of gozoo's GPU backend, elementwise on float32 with the
// coefficients rounded to float32 on the host, as train's CPU kernels (and
// PyTorch's) do.

// sgd_update is train.SGD's step: d = g (+ wd·w); with momentum, buf =
// d on the first step (fresh ≠ 0) else buf·mom + damp·d, and d = d +
// mom·buf (nesterov) or buf; w += negLR·d. buf may be null without momentum.
extern "C" __global__ void sgd_update(float* __restrict__ w, const float* __restrict__ g, float* __restrict__ buf,
    long n, float wd, float mom, float damp, float negLR, int fresh, int nesterov) {
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
    float d = g[i];
    if (wd != 0.0f) d += wd * w[i];
    if (buf) {
      float b = fresh ? d : buf[i] * mom + damp * d;
      buf[i] = b;
      d = nesterov ? d + mom * b : b;
    }
    w[i] += negLR * d;
  }
}

// adam_update is train.Adam's (decoupled = 0) or AdamW's (decoupled ≠ 0)
// step; vmax is null without AMSGrad.
extern "C" __global__ void adam_update(float* __restrict__ w, const float* __restrict__ g,
    float* __restrict__ m, float* __restrict__ v, float* __restrict__ vmax, long n,
    float b1, float c1, float b2, float c2, float eps, float negStep, float bc2Sqrt,
    float wd, float decay, int decoupled) {
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
    float gi = g[i];
    if (decoupled) w[i] *= decay;
    else if (wd != 0.0f) gi += wd * w[i];
    m[i] = m[i] * b1 + c1 * gi;
    v[i] = v[i] * b2 + c2 * gi * gi;
    float vi = v[i];
    if (vmax) {
      vmax[i] = fmaxf(vmax[i], vi);
      vi = vmax[i];
    }
    float denom = sqrtf(vi) / bc2Sqrt + eps;
    w[i] += negStep * (m[i] / denom);
  }
}
