package nn

// BatchNorm2d is layers.BatchNorm2d: x is (N, C, H, W), gamma, beta,
// runMean and runVar are (C). With train true it normalises with the
// batch's statistics and updates runMean/runVar in place (momentum, unbiased
// variance); else it uses them. It also returns what the backward pass
// needs: the per-channel mean and 1/sqrt(var + eps) it used (double, on the
// device, so each is 2·C float32 slots).
func (b *Backend) BatchNorm2d(x, gamma, beta, runMean, runVar Tensor, eps, momentum float64, train bool) (y, mean, invStd Tensor, err error) {
	n, c, h, w, err := shape4("BatchNorm2d", x)
	if err != nil {
		return y, mean, invStd, err
	}
	hw := h * w
	var s struct{ Mean, InvStd Tensor }
	free := func() { b.Free(s.Mean, s.InvStd) }
	// Double vectors: twice the bytes of a float32 (C).
	if s.Mean, err = b.Empty(2 * c); err != nil {
		return y, mean, invStd, err
	}
	if s.InvStd, err = b.Empty(2 * c); err != nil {
		free()
		return y, mean, invStd, err
	}
	if train {
		v, err := b.Empty(2 * c)
		if err != nil {
			free()
			return y, mean, invStd, err
		}
		defer b.Free(v)
		if err = b.perChannel("bn_stats", c, x.Buf, s.Mean.Buf, v.Buf, n, c, hw); err == nil {
			err = b.elementwise("bn_train_params", c, s.Mean.Buf, v.Buf, s.InvStd.Buf, runMean.Buf, runVar.Buf, c, eps, momentum, float64(n*hw))
		}
	} else {
		err = b.elementwise("bn_eval_params", c, runMean.Buf, runVar.Buf, s.Mean.Buf, s.InvStd.Buf, c, eps)
	}
	if err != nil {
		free()
		return y, mean, invStd, err
	}
	if y, err = b.Empty(x.Shape...); err == nil {
		err = b.elementwise("bn_forward", y.Len(), x.Buf, gamma.Buf, beta.Buf, s.Mean.Buf, s.InvStd.Buf, y.Buf, n, c, hw)
	}
	return y, s.Mean, s.InvStd, err
}

// BatchNorm2dBackward returns dx (N, C, H, W), dgamma and dbeta (C), given
// the mean and invStd BatchNorm2d returned and whether it trained.
func (b *Backend) BatchNorm2dBackward(x, gamma, dy, mean, invStd Tensor, train bool) (dx, dgamma, dbeta Tensor, err error) {
	n, c, h, w, err := shape4("BatchNorm2dBackward", x)
	if err != nil {
		return dx, dgamma, dbeta, err
	}
	s := struct{ Mean, InvStd Tensor }{mean, invStd}
	if dgamma, err = b.Empty(c); err != nil {
		return dx, dgamma, dbeta, err
	}
	if dbeta, err = b.Empty(c); err == nil {
		if dx, err = b.Empty(x.Shape...); err == nil {
			if err = b.perChannel("bn_grad_params", c, x.Buf, dy.Buf, s.Mean.Buf, s.InvStd.Buf, dgamma.Buf, dbeta.Buf, n, c, h*w); err == nil {
				err = b.elementwise("bn_grad_input", dx.Len(), x.Buf, gamma.Buf, dy.Buf, dgamma.Buf, dbeta.Buf, s.Mean.Buf, s.InvStd.Buf, dx.Buf, n, c, h*w, boolInt(train))
			}
		}
	}
	if err != nil {
		b.Free(dx, dgamma, dbeta)
		return Tensor{}, Tensor{}, Tensor{}, err
	}
	return dx, dgamma, dbeta, nil
}
