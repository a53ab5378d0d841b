// BatchNorm2d kernels of gozoo's GPU backend. x is (N, C, HW) float32;
// per-channel statistics are double, as on the CPU. Reductions use one block
// per channel (blockDim.x a power of two ≤ 1024), a fixed strided share per
// thread and a fixed tree: no atomics, the same result on every run.

// block_sum returns, in every thread, the sum of v over the block.
__device__ double block_sum(double v) {
  __shared__ double part[1024];
  __syncthreads();
  part[threadIdx.x] = v;
  __syncthreads();
  for (int k = blockDim.x / 2; k > 0; k >>= 1) {
    if (threadIdx.x < k) part[threadIdx.x] += part[threadIdx.x + k];
    __syncthreads();
  }
  return part[0];
}

// bn_stats writes each channel's mean and biased variance of x in two passes.
extern "C" __global__ void bn_stats(const float* __restrict__ x, double* __restrict__ mean,
    double* __restrict__ var, int n, int c, int hw) {
  int ch = blockIdx.x;
  long m = (long)n * hw;
  double s = 0.0;
  for (long t = threadIdx.x; t < m; t += blockDim.x) s += (double)x[((t / hw) * c + ch) * hw + t % hw];
  double mu = block_sum(s) / (double)m;
  double q = 0.0;
  for (long t = threadIdx.x; t < m; t += blockDim.x) {
    double d = (double)x[((t / hw) * c + ch) * hw + t % hw] - mu;
    q += d * d;
  }
  double v = block_sum(q) / (double)m;
  if (threadIdx.x == 0) {
    mean[ch] = mu;
    var[ch] = v;
  }
}

// bn_train_params turns the batch's var into invstd = 1/sqrt(var + eps) and
// updates the running statistics (float32) as PyTorch: mean ← (1−m)·mean +
// m·batchMean, var ← (1−m)·var + m·var·count/(count−1).
extern "C" __global__ void bn_train_params(const double* __restrict__ mean, const double* __restrict__ var,
    double* __restrict__ invstd, float* __restrict__ run_mean, float* __restrict__ run_var,
    int c, double eps, double momentum, double count) {
  for (int ch = blockIdx.x * blockDim.x + threadIdx.x; ch < c; ch += gridDim.x * blockDim.x) {
    invstd[ch] = 1.0 / sqrt(var[ch] + eps);
    run_mean[ch] = (float)((1 - momentum) * (double)run_mean[ch] + momentum * mean[ch]);
    run_var[ch] = (float)((1 - momentum) * (double)run_var[ch] + momentum * var[ch] * count / (count - 1));
  }
}

// bn_eval_params sets mean and invstd from the running statistics.
extern "C" __global__ void bn_eval_params(const float* __restrict__ run_mean, const float* __restrict__ run_var,
    double* __restrict__ mean, double* __restrict__ invstd, int c, double eps) {
  for (int ch = blockIdx.x * blockDim.x + threadIdx.x; ch < c; ch += gridDim.x * blockDim.x) {
    mean[ch] = (double)run_mean[ch];
    invstd[ch] = 1.0 / sqrt((double)run_var[ch] + eps);
  }
}

// bn_forward sets y = (x − mean)·(invstd·γ) + β, computed in double.
extern "C" __global__ void bn_forward(const float* __restrict__ x, const float* __restrict__ gamma,
    const float* __restrict__ beta, const double* __restrict__ mean, const double* __restrict__ invstd,
    float* __restrict__ y, int n, int c, int hw) {
  long total = (long)n * c * hw;
  for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < total; t += (long)gridDim.x * blockDim.x) {
    int ch = (int)((t / hw) % c);
    y[t] = (float)(((double)x[t] - mean[ch]) * (invstd[ch] * (double)gamma[ch]) + (double)beta[ch]);
  }
}

// bn_grad_params writes dγ = invstd·Σ dy·(x − mean) and dβ = Σ dy per channel.
extern "C" __global__ void bn_grad_params(const float* __restrict__ x, const float* __restrict__ dy,
    const double* __restrict__ mean, const double* __restrict__ invstd,
    float* __restrict__ dgamma, float* __restrict__ dbeta, int n, int c, int hw) {
  int ch = blockIdx.x;
  long m = (long)n * hw;
  double mu = mean[ch], sg = 0.0, sb = 0.0;
  for (long t = threadIdx.x; t < m; t += blockDim.x) {
    long i = ((t / hw) * c + ch) * hw + t % hw;
    double d = (double)dy[i];
    sg += d * ((double)x[i] - mu);
    sb += d;
  }
  double g = block_sum(sg);
  double b = block_sum(sb);
  if (threadIdx.x == 0) {
    dgamma[ch] = (float)(g * invstd[ch]);
    dbeta[ch] = (float)b;
  }
}

// bn_grad_input sets dx. Training (train ≠ 0), with M = N·HW:
// dx = γ·invstd·(dy − dβ/M − x̂·dγ/M); evaluation: dx = dy·γ·invstd.
extern "C" __global__ void bn_grad_input(const float* __restrict__ x, const float* __restrict__ gamma,
    const float* __restrict__ dy, const float* __restrict__ dgamma, const float* __restrict__ dbeta,
    const double* __restrict__ mean, const double* __restrict__ invstd, float* __restrict__ dx,
    int n, int c, int hw, int train) {
  long total = (long)n * c * hw;
  double count = (double)n * hw;
  for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < total; t += (long)gridDim.x * blockDim.x) {
    int ch = (int)((t / hw) % c);
    double is = invstd[ch], k = (double)gamma[ch] * is;
    if (!train) {
      dx[t] = (float)((double)dy[t] * k);
      continue;
    }
    double xhat = ((double)x[t] - mean[ch]) * is;
    dx[t] = (float)(k * ((double)dy[t] - (double)dbeta[ch] / count - xhat * (double)dgamma[ch] / count));
  }
}
