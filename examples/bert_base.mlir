builtin.module {
  func.func @bert_base(%x: tensor<1x128x768xbf16>) -> tensor<1x128x768xbf16> {
    %encoder_0_attn_q_weight = nn.param "encoder.0.attn.q.weight" : tensor<768x768xi8>
    %encoder0_q_mm = nn.matmul %x, %encoder_0_attn_q_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_0_attn_q_bias = nn.param "encoder.0.attn.q.bias" : tensor<768xi8>
    %encoder0_q = nn.add %encoder0_q_mm, %encoder_0_attn_q_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder0_q_heads = nn.reshape %encoder0_q : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder0_q_t = nn.transpose %encoder0_q_heads perm = [0, 2, 1, 3] : tensor<1x128x12x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder_0_attn_k_weight = nn.param "encoder.0.attn.k.weight" : tensor<768x768xi8>
    %encoder0_k_mm = nn.matmul %x, %encoder_0_attn_k_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_0_attn_k_bias = nn.param "encoder.0.attn.k.bias" : tensor<768xi8>
    %encoder0_k = nn.add %encoder0_k_mm, %encoder_0_attn_k_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder0_k_heads = nn.reshape %encoder0_k : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder0_k_t = nn.transpose %encoder0_k_heads perm = [0, 2, 3, 1] : tensor<1x128x12x64xbf16> -> tensor<1x12x64x128xbf16>
    %encoder_0_attn_v_weight = nn.param "encoder.0.attn.v.weight" : tensor<768x768xi8>
    %encoder0_v_mm = nn.matmul %x, %encoder_0_attn_v_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_0_attn_v_bias = nn.param "encoder.0.attn.v.bias" : tensor<768xi8>
    %encoder0_v = nn.add %encoder0_v_mm, %encoder_0_attn_v_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder0_v_heads = nn.reshape %encoder0_v : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder0_v_t = nn.transpose %encoder0_v_heads perm = [0, 2, 1, 3] : tensor<1x128x12x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder0_scores = nn.batch_matmul %encoder0_q_t, %encoder0_k_t : tensor<1x12x128x64xbf16>, tensor<1x12x64x128xbf16> -> tensor<1x12x128x128xbf16>
    %encoder0_scale = nn.constant 0.125 : tensor<bf16>
    %encoder0_scaled = nn.mul %encoder0_scores, %encoder0_scale : tensor<1x12x128x128xbf16>, tensor<bf16> -> tensor<1x12x128x128xbf16>
    %encoder0_probs = nn.softmax %encoder0_scaled axis = -1 : tensor<1x12x128x128xbf16>
    %encoder0_ctx = nn.batch_matmul %encoder0_probs, %encoder0_v_t : tensor<1x12x128x128xbf16>, tensor<1x12x128x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder0_ctx_t = nn.transpose %encoder0_ctx perm = [0, 2, 1, 3] : tensor<1x12x128x64xbf16> -> tensor<1x128x12x64xbf16>
    %encoder0_ctx_flat = nn.reshape %encoder0_ctx_t : tensor<1x128x12x64xbf16> -> tensor<1x128x768xbf16>
    %encoder_0_attn_out_weight = nn.param "encoder.0.attn.out.weight" : tensor<768x768xi8>
    %encoder0_attn_mm = nn.matmul %encoder0_ctx_flat, %encoder_0_attn_out_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_0_attn_out_bias = nn.param "encoder.0.attn.out.bias" : tensor<768xi8>
    %encoder0_attn = nn.add %encoder0_attn_mm, %encoder_0_attn_out_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder0_res1 = nn.add %x, %encoder0_attn : tensor<1x128x768xbf16>, tensor<1x128x768xbf16> -> tensor<1x128x768xbf16>
    %encoder_0_ln1_weight = nn.param "encoder.0.ln1.weight" : tensor<768xi8>
    %encoder_0_ln1_bias = nn.param "encoder.0.ln1.bias" : tensor<768xi8>
    %encoder0_ln1 = nn.layer_norm %encoder0_res1, %encoder_0_ln1_weight, %encoder_0_ln1_bias : tensor<1x128x768xbf16>, tensor<768xi8>, tensor<768xi8>
    %encoder_0_ffn_w1_weight = nn.param "encoder.0.ffn.w1.weight" : tensor<768x3072xi8>
    %encoder0_ffn1_mm = nn.matmul %encoder0_ln1, %encoder_0_ffn_w1_weight : tensor<1x128x768xbf16>, tensor<768x3072xi8> -> tensor<1x128x3072xbf16>
    %encoder_0_ffn_w1_bias = nn.param "encoder.0.ffn.w1.bias" : tensor<3072xi8>
    %encoder0_ffn1 = nn.add %encoder0_ffn1_mm, %encoder_0_ffn_w1_bias : tensor<1x128x3072xbf16>, tensor<3072xi8> -> tensor<1x128x3072xbf16>
    %encoder0_gelu = nn.gelu %encoder0_ffn1 : tensor<1x128x3072xbf16>
    %encoder_0_ffn_w2_weight = nn.param "encoder.0.ffn.w2.weight" : tensor<3072x768xi8>
    %encoder0_ffn2_mm = nn.matmul %encoder0_gelu, %encoder_0_ffn_w2_weight : tensor<1x128x3072xbf16>, tensor<3072x768xi8> -> tensor<1x128x768xbf16>
    %encoder_0_ffn_w2_bias = nn.param "encoder.0.ffn.w2.bias" : tensor<768xi8>
    %encoder0_ffn2 = nn.add %encoder0_ffn2_mm, %encoder_0_ffn_w2_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder0_res2 = nn.add %encoder0_ln1, %encoder0_ffn2 : tensor<1x128x768xbf16>, tensor<1x128x768xbf16> -> tensor<1x128x768xbf16>
    %encoder_0_ln2_weight = nn.param "encoder.0.ln2.weight" : tensor<768xi8>
    %encoder_0_ln2_bias = nn.param "encoder.0.ln2.bias" : tensor<768xi8>
    %encoder0_ln2 = nn.layer_norm %encoder0_res2, %encoder_0_ln2_weight, %encoder_0_ln2_bias : tensor<1x128x768xbf16>, tensor<768xi8>, tensor<768xi8>
    %encoder_1_attn_q_weight = nn.param "encoder.1.attn.q.weight" : tensor<768x768xi8>
    %encoder1_q_mm = nn.matmul %encoder0_ln2, %encoder_1_attn_q_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_1_attn_q_bias = nn.param "encoder.1.attn.q.bias" : tensor<768xi8>
    %encoder1_q = nn.add %encoder1_q_mm, %encoder_1_attn_q_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder1_q_heads = nn.reshape %encoder1_q : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder1_q_t = nn.transpose %encoder1_q_heads perm = [0, 2, 1, 3] : tensor<1x128x12x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder_1_attn_k_weight = nn.param "encoder.1.attn.k.weight" : tensor<768x768xi8>
    %encoder1_k_mm = nn.matmul %encoder0_ln2, %encoder_1_attn_k_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_1_attn_k_bias = nn.param "encoder.1.attn.k.bias" : tensor<768xi8>
    %encoder1_k = nn.add %encoder1_k_mm, %encoder_1_attn_k_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder1_k_heads = nn.reshape %encoder1_k : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder1_k_t = nn.transpose %encoder1_k_heads perm = [0, 2, 3, 1] : tensor<1x128x12x64xbf16> -> tensor<1x12x64x128xbf16>
    %encoder_1_attn_v_weight = nn.param "encoder.1.attn.v.weight" : tensor<768x768xi8>
    %encoder1_v_mm = nn.matmul %encoder0_ln2, %encoder_1_attn_v_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_1_attn_v_bias = nn.param "encoder.1.attn.v.bias" : tensor<768xi8>
    %encoder1_v = nn.add %encoder1_v_mm, %encoder_1_attn_v_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder1_v_heads = nn.reshape %encoder1_v : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder1_v_t = nn.transpose %encoder1_v_heads perm = [0, 2, 1, 3] : tensor<1x128x12x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder1_scores = nn.batch_matmul %encoder1_q_t, %encoder1_k_t : tensor<1x12x128x64xbf16>, tensor<1x12x64x128xbf16> -> tensor<1x12x128x128xbf16>
    %encoder1_scale = nn.constant 0.125 : tensor<bf16>
    %encoder1_scaled = nn.mul %encoder1_scores, %encoder1_scale : tensor<1x12x128x128xbf16>, tensor<bf16> -> tensor<1x12x128x128xbf16>
    %encoder1_probs = nn.softmax %encoder1_scaled axis = -1 : tensor<1x12x128x128xbf16>
    %encoder1_ctx = nn.batch_matmul %encoder1_probs, %encoder1_v_t : tensor<1x12x128x128xbf16>, tensor<1x12x128x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder1_ctx_t = nn.transpose %encoder1_ctx perm = [0, 2, 1, 3] : tensor<1x12x128x64xbf16> -> tensor<1x128x12x64xbf16>
    %encoder1_ctx_flat = nn.reshape %encoder1_ctx_t : tensor<1x128x12x64xbf16> -> tensor<1x128x768xbf16>
    %encoder_1_attn_out_weight = nn.param "encoder.1.attn.out.weight" : tensor<768x768xi8>
    %encoder1_attn_mm = nn.matmul %encoder1_ctx_flat, %encoder_1_attn_out_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_1_attn_out_bias = nn.param "encoder.1.attn.out.bias" : tensor<768xi8>
    %encoder1_attn = nn.add %encoder1_attn_mm, %encoder_1_attn_out_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder1_res1 = nn.add %encoder0_ln2, %encoder1_attn : tensor<1x128x768xbf16>, tensor<1x128x768xbf16> -> tensor<1x128x768xbf16>
    %encoder_1_ln1_weight = nn.param "encoder.1.ln1.weight" : tensor<768xi8>
    %encoder_1_ln1_bias = nn.param "encoder.1.ln1.bias" : tensor<768xi8>
    %encoder1_ln1 = nn.layer_norm %encoder1_res1, %encoder_1_ln1_weight, %encoder_1_ln1_bias : tensor<1x128x768xbf16>, tensor<768xi8>, tensor<768xi8>
    %encoder_1_ffn_w1_weight = nn.param "encoder.1.ffn.w1.weight" : tensor<768x3072xi8>
    %encoder1_ffn1_mm = nn.matmul %encoder1_ln1, %encoder_1_ffn_w1_weight : tensor<1x128x768xbf16>, tensor<768x3072xi8> -> tensor<1x128x3072xbf16>
    %encoder_1_ffn_w1_bias = nn.param "encoder.1.ffn.w1.bias" : tensor<3072xi8>
    %encoder1_ffn1 = nn.add %encoder1_ffn1_mm, %encoder_1_ffn_w1_bias : tensor<1x128x3072xbf16>, tensor<3072xi8> -> tensor<1x128x3072xbf16>
    %encoder1_gelu = nn.gelu %encoder1_ffn1 : tensor<1x128x3072xbf16>
    %encoder_1_ffn_w2_weight = nn.param "encoder.1.ffn.w2.weight" : tensor<3072x768xi8>
    %encoder1_ffn2_mm = nn.matmul %encoder1_gelu, %encoder_1_ffn_w2_weight : tensor<1x128x3072xbf16>, tensor<3072x768xi8> -> tensor<1x128x768xbf16>
    %encoder_1_ffn_w2_bias = nn.param "encoder.1.ffn.w2.bias" : tensor<768xi8>
    %encoder1_ffn2 = nn.add %encoder1_ffn2_mm, %encoder_1_ffn_w2_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder1_res2 = nn.add %encoder1_ln1, %encoder1_ffn2 : tensor<1x128x768xbf16>, tensor<1x128x768xbf16> -> tensor<1x128x768xbf16>
    %encoder_1_ln2_weight = nn.param "encoder.1.ln2.weight" : tensor<768xi8>
    %encoder_1_ln2_bias = nn.param "encoder.1.ln2.bias" : tensor<768xi8>
    %encoder1_ln2 = nn.layer_norm %encoder1_res2, %encoder_1_ln2_weight, %encoder_1_ln2_bias : tensor<1x128x768xbf16>, tensor<768xi8>, tensor<768xi8>
    %encoder_2_attn_q_weight = nn.param "encoder.2.attn.q.weight" : tensor<768x768xi8>
    %encoder2_q_mm = nn.matmul %encoder1_ln2, %encoder_2_attn_q_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_2_attn_q_bias = nn.param "encoder.2.attn.q.bias" : tensor<768xi8>
    %encoder2_q = nn.add %encoder2_q_mm, %encoder_2_attn_q_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder2_q_heads = nn.reshape %encoder2_q : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder2_q_t = nn.transpose %encoder2_q_heads perm = [0, 2, 1, 3] : tensor<1x128x12x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder_2_attn_k_weight = nn.param "encoder.2.attn.k.weight" : tensor<768x768xi8>
    %encoder2_k_mm = nn.matmul %encoder1_ln2, %encoder_2_attn_k_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_2_attn_k_bias = nn.param "encoder.2.attn.k.bias" : tensor<768xi8>
    %encoder2_k = nn.add %encoder2_k_mm, %encoder_2_attn_k_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder2_k_heads = nn.reshape %encoder2_k : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder2_k_t = nn.transpose %encoder2_k_heads perm = [0, 2, 3, 1] : tensor<1x128x12x64xbf16> -> tensor<1x12x64x128xbf16>
    %encoder_2_attn_v_weight = nn.param "encoder.2.attn.v.weight" : tensor<768x768xi8>
    %encoder2_v_mm = nn.matmul %encoder1_ln2, %encoder_2_attn_v_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_2_attn_v_bias = nn.param "encoder.2.attn.v.bias" : tensor<768xi8>
    %encoder2_v = nn.add %encoder2_v_mm, %encoder_2_attn_v_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder2_v_heads = nn.reshape %encoder2_v : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder2_v_t = nn.transpose %encoder2_v_heads perm = [0, 2, 1, 3] : tensor<1x128x12x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder2_scores = nn.batch_matmul %encoder2_q_t, %encoder2_k_t : tensor<1x12x128x64xbf16>, tensor<1x12x64x128xbf16> -> tensor<1x12x128x128xbf16>
    %encoder2_scale = nn.constant 0.125 : tensor<bf16>
    %encoder2_scaled = nn.mul %encoder2_scores, %encoder2_scale : tensor<1x12x128x128xbf16>, tensor<bf16> -> tensor<1x12x128x128xbf16>
    %encoder2_probs = nn.softmax %encoder2_scaled axis = -1 : tensor<1x12x128x128xbf16>
    %encoder2_ctx = nn.batch_matmul %encoder2_probs, %encoder2_v_t : tensor<1x12x128x128xbf16>, tensor<1x12x128x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder2_ctx_t = nn.transpose %encoder2_ctx perm = [0, 2, 1, 3] : tensor<1x12x128x64xbf16> -> tensor<1x128x12x64xbf16>
    %encoder2_ctx_flat = nn.reshape %encoder2_ctx_t : tensor<1x128x12x64xbf16> -> tensor<1x128x768xbf16>
    %encoder_2_attn_out_weight = nn.param "encoder.2.attn.out.weight" : tensor<768x768xi8>
    %encoder2_attn_mm = nn.matmul %encoder2_ctx_flat, %encoder_2_attn_out_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_2_attn_out_bias = nn.param "encoder.2.attn.out.bias" : tensor<768xi8>
    %encoder2_attn = nn.add %encoder2_attn_mm, %encoder_2_attn_out_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder2_res1 = nn.add %encoder1_ln2, %encoder2_attn : tensor<1x128x768xbf16>, tensor<1x128x768xbf16> -> tensor<1x128x768xbf16>
    %encoder_2_ln1_weight = nn.param "encoder.2.ln1.weight" : tensor<768xi8>
    %encoder_2_ln1_bias = nn.param "encoder.2.ln1.bias" : tensor<768xi8>
    %encoder2_ln1 = nn.layer_norm %encoder2_res1, %encoder_2_ln1_weight, %encoder_2_ln1_bias : tensor<1x128x768xbf16>, tensor<768xi8>, tensor<768xi8>
    %encoder_2_ffn_w1_weight = nn.param "encoder.2.ffn.w1.weight" : tensor<768x3072xi8>
    %encoder2_ffn1_mm = nn.matmul %encoder2_ln1, %encoder_2_ffn_w1_weight : tensor<1x128x768xbf16>, tensor<768x3072xi8> -> tensor<1x128x3072xbf16>
    %encoder_2_ffn_w1_bias = nn.param "encoder.2.ffn.w1.bias" : tensor<3072xi8>
    %encoder2_ffn1 = nn.add %encoder2_ffn1_mm, %encoder_2_ffn_w1_bias : tensor<1x128x3072xbf16>, tensor<3072xi8> -> tensor<1x128x3072xbf16>
    %encoder2_gelu = nn.gelu %encoder2_ffn1 : tensor<1x128x3072xbf16>
    %encoder_2_ffn_w2_weight = nn.param "encoder.2.ffn.w2.weight" : tensor<3072x768xi8>
    %encoder2_ffn2_mm = nn.matmul %encoder2_gelu, %encoder_2_ffn_w2_weight : tensor<1x128x3072xbf16>, tensor<3072x768xi8> -> tensor<1x128x768xbf16>
    %encoder_2_ffn_w2_bias = nn.param "encoder.2.ffn.w2.bias" : tensor<768xi8>
    %encoder2_ffn2 = nn.add %encoder2_ffn2_mm, %encoder_2_ffn_w2_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder2_res2 = nn.add %encoder2_ln1, %encoder2_ffn2 : tensor<1x128x768xbf16>, tensor<1x128x768xbf16> -> tensor<1x128x768xbf16>
    %encoder_2_ln2_weight = nn.param "encoder.2.ln2.weight" : tensor<768xi8>
    %encoder_2_ln2_bias = nn.param "encoder.2.ln2.bias" : tensor<768xi8>
    %encoder2_ln2 = nn.layer_norm %encoder2_res2, %encoder_2_ln2_weight, %encoder_2_ln2_bias : tensor<1x128x768xbf16>, tensor<768xi8>, tensor<768xi8>
    %encoder_3_attn_q_weight = nn.param "encoder.3.attn.q.weight" : tensor<768x768xi8>
    %encoder3_q_mm = nn.matmul %encoder2_ln2, %encoder_3_attn_q_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_3_attn_q_bias = nn.param "encoder.3.attn.q.bias" : tensor<768xi8>
    %encoder3_q = nn.add %encoder3_q_mm, %encoder_3_attn_q_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder3_q_heads = nn.reshape %encoder3_q : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder3_q_t = nn.transpose %encoder3_q_heads perm = [0, 2, 1, 3] : tensor<1x128x12x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder_3_attn_k_weight = nn.param "encoder.3.attn.k.weight" : tensor<768x768xi8>
    %encoder3_k_mm = nn.matmul %encoder2_ln2, %encoder_3_attn_k_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_3_attn_k_bias = nn.param "encoder.3.attn.k.bias" : tensor<768xi8>
    %encoder3_k = nn.add %encoder3_k_mm, %encoder_3_attn_k_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder3_k_heads = nn.reshape %encoder3_k : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder3_k_t = nn.transpose %encoder3_k_heads perm = [0, 2, 3, 1] : tensor<1x128x12x64xbf16> -> tensor<1x12x64x128xbf16>
    %encoder_3_attn_v_weight = nn.param "encoder.3.attn.v.weight" : tensor<768x768xi8>
    %encoder3_v_mm = nn.matmul %encoder2_ln2, %encoder_3_attn_v_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_3_attn_v_bias = nn.param "encoder.3.attn.v.bias" : tensor<768xi8>
    %encoder3_v = nn.add %encoder3_v_mm, %encoder_3_attn_v_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder3_v_heads = nn.reshape %encoder3_v : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder3_v_t = nn.transpose %encoder3_v_heads perm = [0, 2, 1, 3] : tensor<1x128x12x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder3_scores = nn.batch_matmul %encoder3_q_t, %encoder3_k_t : tensor<1x12x128x64xbf16>, tensor<1x12x64x128xbf16> -> tensor<1x12x128x128xbf16>
    %encoder3_scale = nn.constant 0.125 : tensor<bf16>
    %encoder3_scaled = nn.mul %encoder3_scores, %encoder3_scale : tensor<1x12x128x128xbf16>, tensor<bf16> -> tensor<1x12x128x128xbf16>
    %encoder3_probs = nn.softmax %encoder3_scaled axis = -1 : tensor<1x12x128x128xbf16>
    %encoder3_ctx = nn.batch_matmul %encoder3_probs, %encoder3_v_t : tensor<1x12x128x128xbf16>, tensor<1x12x128x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder3_ctx_t = nn.transpose %encoder3_ctx perm = [0, 2, 1, 3] : tensor<1x12x128x64xbf16> -> tensor<1x128x12x64xbf16>
    %encoder3_ctx_flat = nn.reshape %encoder3_ctx_t : tensor<1x128x12x64xbf16> -> tensor<1x128x768xbf16>
    %encoder_3_attn_out_weight = nn.param "encoder.3.attn.out.weight" : tensor<768x768xi8>
    %encoder3_attn_mm = nn.matmul %encoder3_ctx_flat, %encoder_3_attn_out_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_3_attn_out_bias = nn.param "encoder.3.attn.out.bias" : tensor<768xi8>
    %encoder3_attn = nn.add %encoder3_attn_mm, %encoder_3_attn_out_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder3_res1 = nn.add %encoder2_ln2, %encoder3_attn : tensor<1x128x768xbf16>, tensor<1x128x768xbf16> -> tensor<1x128x768xbf16>
    %encoder_3_ln1_weight = nn.param "encoder.3.ln1.weight" : tensor<768xi8>
    %encoder_3_ln1_bias = nn.param "encoder.3.ln1.bias" : tensor<768xi8>
    %encoder3_ln1 = nn.layer_norm %encoder3_res1, %encoder_3_ln1_weight, %encoder_3_ln1_bias : tensor<1x128x768xbf16>, tensor<768xi8>, tensor<768xi8>
    %encoder_3_ffn_w1_weight = nn.param "encoder.3.ffn.w1.weight" : tensor<768x3072xi8>
    %encoder3_ffn1_mm = nn.matmul %encoder3_ln1, %encoder_3_ffn_w1_weight : tensor<1x128x768xbf16>, tensor<768x3072xi8> -> tensor<1x128x3072xbf16>
    %encoder_3_ffn_w1_bias = nn.param "encoder.3.ffn.w1.bias" : tensor<3072xi8>
    %encoder3_ffn1 = nn.add %encoder3_ffn1_mm, %encoder_3_ffn_w1_bias : tensor<1x128x3072xbf16>, tensor<3072xi8> -> tensor<1x128x3072xbf16>
    %encoder3_gelu = nn.gelu %encoder3_ffn1 : tensor<1x128x3072xbf16>
    %encoder_3_ffn_w2_weight = nn.param "encoder.3.ffn.w2.weight" : tensor<3072x768xi8>
    %encoder3_ffn2_mm = nn.matmul %encoder3_gelu, %encoder_3_ffn_w2_weight : tensor<1x128x3072xbf16>, tensor<3072x768xi8> -> tensor<1x128x768xbf16>
    %encoder_3_ffn_w2_bias = nn.param "encoder.3.ffn.w2.bias" : tensor<768xi8>
    %encoder3_ffn2 = nn.add %encoder3_ffn2_mm, %encoder_3_ffn_w2_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder3_res2 = nn.add %encoder3_ln1, %encoder3_ffn2 : tensor<1x128x768xbf16>, tensor<1x128x768xbf16> -> tensor<1x128x768xbf16>
    %encoder_3_ln2_weight = nn.param "encoder.3.ln2.weight" : tensor<768xi8>
    %encoder_3_ln2_bias = nn.param "encoder.3.ln2.bias" : tensor<768xi8>
    %encoder3_ln2 = nn.layer_norm %encoder3_res2, %encoder_3_ln2_weight, %encoder_3_ln2_bias : tensor<1x128x768xbf16>, tensor<768xi8>, tensor<768xi8>
    %encoder_4_attn_q_weight = nn.param "encoder.4.attn.q.weight" : tensor<768x768xi8>
    %encoder4_q_mm = nn.matmul %encoder3_ln2, %encoder_4_attn_q_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_4_attn_q_bias = nn.param "encoder.4.attn.q.bias" : tensor<768xi8>
    %encoder4_q = nn.add %encoder4_q_mm, %encoder_4_attn_q_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder4_q_heads = nn.reshape %encoder4_q : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder4_q_t = nn.transpose %encoder4_q_heads perm = [0, 2, 1, 3] : tensor<1x128x12x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder_4_attn_k_weight = nn.param "encoder.4.attn.k.weight" : tensor<768x768xi8>
    %encoder4_k_mm = nn.matmul %encoder3_ln2, %encoder_4_attn_k_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_4_attn_k_bias = nn.param "encoder.4.attn.k.bias" : tensor<768xi8>
    %encoder4_k = nn.add %encoder4_k_mm, %encoder_4_attn_k_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder4_k_heads = nn.reshape %encoder4_k : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder4_k_t = nn.transpose %encoder4_k_heads perm = [0, 2, 3, 1] : tensor<1x128x12x64xbf16> -> tensor<1x12x64x128xbf16>
    %encoder_4_attn_v_weight = nn.param "encoder.4.attn.v.weight" : tensor<768x768xi8>
    %encoder4_v_mm = nn.matmul %encoder3_ln2, %encoder_4_attn_v_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_4_attn_v_bias = nn.param "encoder.4.attn.v.bias" : tensor<768xi8>
    %encoder4_v = nn.add %encoder4_v_mm, %encoder_4_attn_v_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder4_v_heads = nn.reshape %encoder4_v : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder4_v_t = nn.transpose %encoder4_v_heads perm = [0, 2, 1, 3] : tensor<1x128x12x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder4_scores = nn.batch_matmul %encoder4_q_t, %encoder4_k_t : tensor<1x12x128x64xbf16>, tensor<1x12x64x128xbf16> -> tensor<1x12x128x128xbf16>
    %encoder4_scale = nn.constant 0.125 : tensor<bf16>
    %encoder4_scaled = nn.mul %encoder4_scores, %encoder4_scale : tensor<1x12x128x128xbf16>, tensor<bf16> -> tensor<1x12x128x128xbf16>
    %encoder4_probs = nn.softmax %encoder4_scaled axis = -1 : tensor<1x12x128x128xbf16>
    %encoder4_ctx = nn.batch_matmul %encoder4_probs, %encoder4_v_t : tensor<1x12x128x128xbf16>, tensor<1x12x128x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder4_ctx_t = nn.transpose %encoder4_ctx perm = [0, 2, 1, 3] : tensor<1x12x128x64xbf16> -> tensor<1x128x12x64xbf16>
    %encoder4_ctx_flat = nn.reshape %encoder4_ctx_t : tensor<1x128x12x64xbf16> -> tensor<1x128x768xbf16>
    %encoder_4_attn_out_weight = nn.param "encoder.4.attn.out.weight" : tensor<768x768xi8>
    %encoder4_attn_mm = nn.matmul %encoder4_ctx_flat, %encoder_4_attn_out_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_4_attn_out_bias = nn.param "encoder.4.attn.out.bias" : tensor<768xi8>
    %encoder4_attn = nn.add %encoder4_attn_mm, %encoder_4_attn_out_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder4_res1 = nn.add %encoder3_ln2, %encoder4_attn : tensor<1x128x768xbf16>, tensor<1x128x768xbf16> -> tensor<1x128x768xbf16>
    %encoder_4_ln1_weight = nn.param "encoder.4.ln1.weight" : tensor<768xi8>
    %encoder_4_ln1_bias = nn.param "encoder.4.ln1.bias" : tensor<768xi8>
    %encoder4_ln1 = nn.layer_norm %encoder4_res1, %encoder_4_ln1_weight, %encoder_4_ln1_bias : tensor<1x128x768xbf16>, tensor<768xi8>, tensor<768xi8>
    %encoder_4_ffn_w1_weight = nn.param "encoder.4.ffn.w1.weight" : tensor<768x3072xi8>
    %encoder4_ffn1_mm = nn.matmul %encoder4_ln1, %encoder_4_ffn_w1_weight : tensor<1x128x768xbf16>, tensor<768x3072xi8> -> tensor<1x128x3072xbf16>
    %encoder_4_ffn_w1_bias = nn.param "encoder.4.ffn.w1.bias" : tensor<3072xi8>
    %encoder4_ffn1 = nn.add %encoder4_ffn1_mm, %encoder_4_ffn_w1_bias : tensor<1x128x3072xbf16>, tensor<3072xi8> -> tensor<1x128x3072xbf16>
    %encoder4_gelu = nn.gelu %encoder4_ffn1 : tensor<1x128x3072xbf16>
    %encoder_4_ffn_w2_weight = nn.param "encoder.4.ffn.w2.weight" : tensor<3072x768xi8>
    %encoder4_ffn2_mm = nn.matmul %encoder4_gelu, %encoder_4_ffn_w2_weight : tensor<1x128x3072xbf16>, tensor<3072x768xi8> -> tensor<1x128x768xbf16>
    %encoder_4_ffn_w2_bias = nn.param "encoder.4.ffn.w2.bias" : tensor<768xi8>
    %encoder4_ffn2 = nn.add %encoder4_ffn2_mm, %encoder_4_ffn_w2_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder4_res2 = nn.add %encoder4_ln1, %encoder4_ffn2 : tensor<1x128x768xbf16>, tensor<1x128x768xbf16> -> tensor<1x128x768xbf16>
    %encoder_4_ln2_weight = nn.param "encoder.4.ln2.weight" : tensor<768xi8>
    %encoder_4_ln2_bias = nn.param "encoder.4.ln2.bias" : tensor<768xi8>
    %encoder4_ln2 = nn.layer_norm %encoder4_res2, %encoder_4_ln2_weight, %encoder_4_ln2_bias : tensor<1x128x768xbf16>, tensor<768xi8>, tensor<768xi8>
    %encoder_5_attn_q_weight = nn.param "encoder.5.attn.q.weight" : tensor<768x768xi8>
    %encoder5_q_mm = nn.matmul %encoder4_ln2, %encoder_5_attn_q_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_5_attn_q_bias = nn.param "encoder.5.attn.q.bias" : tensor<768xi8>
    %encoder5_q = nn.add %encoder5_q_mm, %encoder_5_attn_q_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder5_q_heads = nn.reshape %encoder5_q : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder5_q_t = nn.transpose %encoder5_q_heads perm = [0, 2, 1, 3] : tensor<1x128x12x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder_5_attn_k_weight = nn.param "encoder.5.attn.k.weight" : tensor<768x768xi8>
    %encoder5_k_mm = nn.matmul %encoder4_ln2, %encoder_5_attn_k_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_5_attn_k_bias = nn.param "encoder.5.attn.k.bias" : tensor<768xi8>
    %encoder5_k = nn.add %encoder5_k_mm, %encoder_5_attn_k_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder5_k_heads = nn.reshape %encoder5_k : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder5_k_t = nn.transpose %encoder5_k_heads perm = [0, 2, 3, 1] : tensor<1x128x12x64xbf16> -> tensor<1x12x64x128xbf16>
    %encoder_5_attn_v_weight = nn.param "encoder.5.attn.v.weight" : tensor<768x768xi8>
    %encoder5_v_mm = nn.matmul %encoder4_ln2, %encoder_5_attn_v_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_5_attn_v_bias = nn.param "encoder.5.attn.v.bias" : tensor<768xi8>
    %encoder5_v = nn.add %encoder5_v_mm, %encoder_5_attn_v_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder5_v_heads = nn.reshape %encoder5_v : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder5_v_t = nn.transpose %encoder5_v_heads perm = [0, 2, 1, 3] : tensor<1x128x12x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder5_scores = nn.batch_matmul %encoder5_q_t, %encoder5_k_t : tensor<1x12x128x64xbf16>, tensor<1x12x64x128xbf16> -> tensor<1x12x128x128xbf16>
    %encoder5_scale = nn.constant 0.125 : tensor<bf16>
    %encoder5_scaled = nn.mul %encoder5_scores, %encoder5_scale : tensor<1x12x128x128xbf16>, tensor<bf16> -> tensor<1x12x128x128xbf16>
    %encoder5_probs = nn.softmax %encoder5_scaled axis = -1 : tensor<1x12x128x128xbf16>
    %encoder5_ctx = nn.batch_matmul %encoder5_probs, %encoder5_v_t : tensor<1x12x128x128xbf16>, tensor<1x12x128x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder5_ctx_t = nn.transpose %encoder5_ctx perm = [0, 2, 1, 3] : tensor<1x12x128x64xbf16> -> tensor<1x128x12x64xbf16>
    %encoder5_ctx_flat = nn.reshape %encoder5_ctx_t : tensor<1x128x12x64xbf16> -> tensor<1x128x768xbf16>
    %encoder_5_attn_out_weight = nn.param "encoder.5.attn.out.weight" : tensor<768x768xi8>
    %encoder5_attn_mm = nn.matmul %encoder5_ctx_flat, %encoder_5_attn_out_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_5_attn_out_bias = nn.param "encoder.5.attn.out.bias" : tensor<768xi8>
    %encoder5_attn = nn.add %encoder5_attn_mm, %encoder_5_attn_out_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder5_res1 = nn.add %encoder4_ln2, %encoder5_attn : tensor<1x128x768xbf16>, tensor<1x128x768xbf16> -> tensor<1x128x768xbf16>
    %encoder_5_ln1_weight = nn.param "encoder.5.ln1.weight" : tensor<768xi8>
    %encoder_5_ln1_bias = nn.param "encoder.5.ln1.bias" : tensor<768xi8>
    %encoder5_ln1 = nn.layer_norm %encoder5_res1, %encoder_5_ln1_weight, %encoder_5_ln1_bias : tensor<1x128x768xbf16>, tensor<768xi8>, tensor<768xi8>
    %encoder_5_ffn_w1_weight = nn.param "encoder.5.ffn.w1.weight" : tensor<768x3072xi8>
    %encoder5_ffn1_mm = nn.matmul %encoder5_ln1, %encoder_5_ffn_w1_weight : tensor<1x128x768xbf16>, tensor<768x3072xi8> -> tensor<1x128x3072xbf16>
    %encoder_5_ffn_w1_bias = nn.param "encoder.5.ffn.w1.bias" : tensor<3072xi8>
    %encoder5_ffn1 = nn.add %encoder5_ffn1_mm, %encoder_5_ffn_w1_bias : tensor<1x128x3072xbf16>, tensor<3072xi8> -> tensor<1x128x3072xbf16>
    %encoder5_gelu = nn.gelu %encoder5_ffn1 : tensor<1x128x3072xbf16>
    %encoder_5_ffn_w2_weight = nn.param "encoder.5.ffn.w2.weight" : tensor<3072x768xi8>
    %encoder5_ffn2_mm = nn.matmul %encoder5_gelu, %encoder_5_ffn_w2_weight : tensor<1x128x3072xbf16>, tensor<3072x768xi8> -> tensor<1x128x768xbf16>
    %encoder_5_ffn_w2_bias = nn.param "encoder.5.ffn.w2.bias" : tensor<768xi8>
    %encoder5_ffn2 = nn.add %encoder5_ffn2_mm, %encoder_5_ffn_w2_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder5_res2 = nn.add %encoder5_ln1, %encoder5_ffn2 : tensor<1x128x768xbf16>, tensor<1x128x768xbf16> -> tensor<1x128x768xbf16>
    %encoder_5_ln2_weight = nn.param "encoder.5.ln2.weight" : tensor<768xi8>
    %encoder_5_ln2_bias = nn.param "encoder.5.ln2.bias" : tensor<768xi8>
    %encoder5_ln2 = nn.layer_norm %encoder5_res2, %encoder_5_ln2_weight, %encoder_5_ln2_bias : tensor<1x128x768xbf16>, tensor<768xi8>, tensor<768xi8>
    %encoder_6_attn_q_weight = nn.param "encoder.6.attn.q.weight" : tensor<768x768xi8>
    %encoder6_q_mm = nn.matmul %encoder5_ln2, %encoder_6_attn_q_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_6_attn_q_bias = nn.param "encoder.6.attn.q.bias" : tensor<768xi8>
    %encoder6_q = nn.add %encoder6_q_mm, %encoder_6_attn_q_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder6_q_heads = nn.reshape %encoder6_q : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder6_q_t = nn.transpose %encoder6_q_heads perm = [0, 2, 1, 3] : tensor<1x128x12x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder_6_attn_k_weight = nn.param "encoder.6.attn.k.weight" : tensor<768x768xi8>
    %encoder6_k_mm = nn.matmul %encoder5_ln2, %encoder_6_attn_k_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_6_attn_k_bias = nn.param "encoder.6.attn.k.bias" : tensor<768xi8>
    %encoder6_k = nn.add %encoder6_k_mm, %encoder_6_attn_k_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder6_k_heads = nn.reshape %encoder6_k : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder6_k_t = nn.transpose %encoder6_k_heads perm = [0, 2, 3, 1] : tensor<1x128x12x64xbf16> -> tensor<1x12x64x128xbf16>
    %encoder_6_attn_v_weight = nn.param "encoder.6.attn.v.weight" : tensor<768x768xi8>
    %encoder6_v_mm = nn.matmul %encoder5_ln2, %encoder_6_attn_v_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_6_attn_v_bias = nn.param "encoder.6.attn.v.bias" : tensor<768xi8>
    %encoder6_v = nn.add %encoder6_v_mm, %encoder_6_attn_v_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder6_v_heads = nn.reshape %encoder6_v : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder6_v_t = nn.transpose %encoder6_v_heads perm = [0, 2, 1, 3] : tensor<1x128x12x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder6_scores = nn.batch_matmul %encoder6_q_t, %encoder6_k_t : tensor<1x12x128x64xbf16>, tensor<1x12x64x128xbf16> -> tensor<1x12x128x128xbf16>
    %encoder6_scale = nn.constant 0.125 : tensor<bf16>
    %encoder6_scaled = nn.mul %encoder6_scores, %encoder6_scale : tensor<1x12x128x128xbf16>, tensor<bf16> -> tensor<1x12x128x128xbf16>
    %encoder6_probs = nn.softmax %encoder6_scaled axis = -1 : tensor<1x12x128x128xbf16>
    %encoder6_ctx = nn.batch_matmul %encoder6_probs, %encoder6_v_t : tensor<1x12x128x128xbf16>, tensor<1x12x128x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder6_ctx_t = nn.transpose %encoder6_ctx perm = [0, 2, 1, 3] : tensor<1x12x128x64xbf16> -> tensor<1x128x12x64xbf16>
    %encoder6_ctx_flat = nn.reshape %encoder6_ctx_t : tensor<1x128x12x64xbf16> -> tensor<1x128x768xbf16>
    %encoder_6_attn_out_weight = nn.param "encoder.6.attn.out.weight" : tensor<768x768xi8>
    %encoder6_attn_mm = nn.matmul %encoder6_ctx_flat, %encoder_6_attn_out_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_6_attn_out_bias = nn.param "encoder.6.attn.out.bias" : tensor<768xi8>
    %encoder6_attn = nn.add %encoder6_attn_mm, %encoder_6_attn_out_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder6_res1 = nn.add %encoder5_ln2, %encoder6_attn : tensor<1x128x768xbf16>, tensor<1x128x768xbf16> -> tensor<1x128x768xbf16>
    %encoder_6_ln1_weight = nn.param "encoder.6.ln1.weight" : tensor<768xi8>
    %encoder_6_ln1_bias = nn.param "encoder.6.ln1.bias" : tensor<768xi8>
    %encoder6_ln1 = nn.layer_norm %encoder6_res1, %encoder_6_ln1_weight, %encoder_6_ln1_bias : tensor<1x128x768xbf16>, tensor<768xi8>, tensor<768xi8>
    %encoder_6_ffn_w1_weight = nn.param "encoder.6.ffn.w1.weight" : tensor<768x3072xi8>
    %encoder6_ffn1_mm = nn.matmul %encoder6_ln1, %encoder_6_ffn_w1_weight : tensor<1x128x768xbf16>, tensor<768x3072xi8> -> tensor<1x128x3072xbf16>
    %encoder_6_ffn_w1_bias = nn.param "encoder.6.ffn.w1.bias" : tensor<3072xi8>
    %encoder6_ffn1 = nn.add %encoder6_ffn1_mm, %encoder_6_ffn_w1_bias : tensor<1x128x3072xbf16>, tensor<3072xi8> -> tensor<1x128x3072xbf16>
    %encoder6_gelu = nn.gelu %encoder6_ffn1 : tensor<1x128x3072xbf16>
    %encoder_6_ffn_w2_weight = nn.param "encoder.6.ffn.w2.weight" : tensor<3072x768xi8>
    %encoder6_ffn2_mm = nn.matmul %encoder6_gelu, %encoder_6_ffn_w2_weight : tensor<1x128x3072xbf16>, tensor<3072x768xi8> -> tensor<1x128x768xbf16>
    %encoder_6_ffn_w2_bias = nn.param "encoder.6.ffn.w2.bias" : tensor<768xi8>
    %encoder6_ffn2 = nn.add %encoder6_ffn2_mm, %encoder_6_ffn_w2_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder6_res2 = nn.add %encoder6_ln1, %encoder6_ffn2 : tensor<1x128x768xbf16>, tensor<1x128x768xbf16> -> tensor<1x128x768xbf16>
    %encoder_6_ln2_weight = nn.param "encoder.6.ln2.weight" : tensor<768xi8>
    %encoder_6_ln2_bias = nn.param "encoder.6.ln2.bias" : tensor<768xi8>
    %encoder6_ln2 = nn.layer_norm %encoder6_res2, %encoder_6_ln2_weight, %encoder_6_ln2_bias : tensor<1x128x768xbf16>, tensor<768xi8>, tensor<768xi8>
    %encoder_7_attn_q_weight = nn.param "encoder.7.attn.q.weight" : tensor<768x768xi8>
    %encoder7_q_mm = nn.matmul %encoder6_ln2, %encoder_7_attn_q_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_7_attn_q_bias = nn.param "encoder.7.attn.q.bias" : tensor<768xi8>
    %encoder7_q = nn.add %encoder7_q_mm, %encoder_7_attn_q_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder7_q_heads = nn.reshape %encoder7_q : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder7_q_t = nn.transpose %encoder7_q_heads perm = [0, 2, 1, 3] : tensor<1x128x12x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder_7_attn_k_weight = nn.param "encoder.7.attn.k.weight" : tensor<768x768xi8>
    %encoder7_k_mm = nn.matmul %encoder6_ln2, %encoder_7_attn_k_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_7_attn_k_bias = nn.param "encoder.7.attn.k.bias" : tensor<768xi8>
    %encoder7_k = nn.add %encoder7_k_mm, %encoder_7_attn_k_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder7_k_heads = nn.reshape %encoder7_k : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder7_k_t = nn.transpose %encoder7_k_heads perm = [0, 2, 3, 1] : tensor<1x128x12x64xbf16> -> tensor<1x12x64x128xbf16>
    %encoder_7_attn_v_weight = nn.param "encoder.7.attn.v.weight" : tensor<768x768xi8>
    %encoder7_v_mm = nn.matmul %encoder6_ln2, %encoder_7_attn_v_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_7_attn_v_bias = nn.param "encoder.7.attn.v.bias" : tensor<768xi8>
    %encoder7_v = nn.add %encoder7_v_mm, %encoder_7_attn_v_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder7_v_heads = nn.reshape %encoder7_v : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder7_v_t = nn.transpose %encoder7_v_heads perm = [0, 2, 1, 3] : tensor<1x128x12x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder7_scores = nn.batch_matmul %encoder7_q_t, %encoder7_k_t : tensor<1x12x128x64xbf16>, tensor<1x12x64x128xbf16> -> tensor<1x12x128x128xbf16>
    %encoder7_scale = nn.constant 0.125 : tensor<bf16>
    %encoder7_scaled = nn.mul %encoder7_scores, %encoder7_scale : tensor<1x12x128x128xbf16>, tensor<bf16> -> tensor<1x12x128x128xbf16>
    %encoder7_probs = nn.softmax %encoder7_scaled axis = -1 : tensor<1x12x128x128xbf16>
    %encoder7_ctx = nn.batch_matmul %encoder7_probs, %encoder7_v_t : tensor<1x12x128x128xbf16>, tensor<1x12x128x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder7_ctx_t = nn.transpose %encoder7_ctx perm = [0, 2, 1, 3] : tensor<1x12x128x64xbf16> -> tensor<1x128x12x64xbf16>
    %encoder7_ctx_flat = nn.reshape %encoder7_ctx_t : tensor<1x128x12x64xbf16> -> tensor<1x128x768xbf16>
    %encoder_7_attn_out_weight = nn.param "encoder.7.attn.out.weight" : tensor<768x768xi8>
    %encoder7_attn_mm = nn.matmul %encoder7_ctx_flat, %encoder_7_attn_out_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_7_attn_out_bias = nn.param "encoder.7.attn.out.bias" : tensor<768xi8>
    %encoder7_attn = nn.add %encoder7_attn_mm, %encoder_7_attn_out_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder7_res1 = nn.add %encoder6_ln2, %encoder7_attn : tensor<1x128x768xbf16>, tensor<1x128x768xbf16> -> tensor<1x128x768xbf16>
    %encoder_7_ln1_weight = nn.param "encoder.7.ln1.weight" : tensor<768xi8>
    %encoder_7_ln1_bias = nn.param "encoder.7.ln1.bias" : tensor<768xi8>
    %encoder7_ln1 = nn.layer_norm %encoder7_res1, %encoder_7_ln1_weight, %encoder_7_ln1_bias : tensor<1x128x768xbf16>, tensor<768xi8>, tensor<768xi8>
    %encoder_7_ffn_w1_weight = nn.param "encoder.7.ffn.w1.weight" : tensor<768x3072xi8>
    %encoder7_ffn1_mm = nn.matmul %encoder7_ln1, %encoder_7_ffn_w1_weight : tensor<1x128x768xbf16>, tensor<768x3072xi8> -> tensor<1x128x3072xbf16>
    %encoder_7_ffn_w1_bias = nn.param "encoder.7.ffn.w1.bias" : tensor<3072xi8>
    %encoder7_ffn1 = nn.add %encoder7_ffn1_mm, %encoder_7_ffn_w1_bias : tensor<1x128x3072xbf16>, tensor<3072xi8> -> tensor<1x128x3072xbf16>
    %encoder7_gelu = nn.gelu %encoder7_ffn1 : tensor<1x128x3072xbf16>
    %encoder_7_ffn_w2_weight = nn.param "encoder.7.ffn.w2.weight" : tensor<3072x768xi8>
    %encoder7_ffn2_mm = nn.matmul %encoder7_gelu, %encoder_7_ffn_w2_weight : tensor<1x128x3072xbf16>, tensor<3072x768xi8> -> tensor<1x128x768xbf16>
    %encoder_7_ffn_w2_bias = nn.param "encoder.7.ffn.w2.bias" : tensor<768xi8>
    %encoder7_ffn2 = nn.add %encoder7_ffn2_mm, %encoder_7_ffn_w2_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder7_res2 = nn.add %encoder7_ln1, %encoder7_ffn2 : tensor<1x128x768xbf16>, tensor<1x128x768xbf16> -> tensor<1x128x768xbf16>
    %encoder_7_ln2_weight = nn.param "encoder.7.ln2.weight" : tensor<768xi8>
    %encoder_7_ln2_bias = nn.param "encoder.7.ln2.bias" : tensor<768xi8>
    %encoder7_ln2 = nn.layer_norm %encoder7_res2, %encoder_7_ln2_weight, %encoder_7_ln2_bias : tensor<1x128x768xbf16>, tensor<768xi8>, tensor<768xi8>
    %encoder_8_attn_q_weight = nn.param "encoder.8.attn.q.weight" : tensor<768x768xi8>
    %encoder8_q_mm = nn.matmul %encoder7_ln2, %encoder_8_attn_q_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_8_attn_q_bias = nn.param "encoder.8.attn.q.bias" : tensor<768xi8>
    %encoder8_q = nn.add %encoder8_q_mm, %encoder_8_attn_q_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder8_q_heads = nn.reshape %encoder8_q : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder8_q_t = nn.transpose %encoder8_q_heads perm = [0, 2, 1, 3] : tensor<1x128x12x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder_8_attn_k_weight = nn.param "encoder.8.attn.k.weight" : tensor<768x768xi8>
    %encoder8_k_mm = nn.matmul %encoder7_ln2, %encoder_8_attn_k_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_8_attn_k_bias = nn.param "encoder.8.attn.k.bias" : tensor<768xi8>
    %encoder8_k = nn.add %encoder8_k_mm, %encoder_8_attn_k_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder8_k_heads = nn.reshape %encoder8_k : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder8_k_t = nn.transpose %encoder8_k_heads perm = [0, 2, 3, 1] : tensor<1x128x12x64xbf16> -> tensor<1x12x64x128xbf16>
    %encoder_8_attn_v_weight = nn.param "encoder.8.attn.v.weight" : tensor<768x768xi8>
    %encoder8_v_mm = nn.matmul %encoder7_ln2, %encoder_8_attn_v_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_8_attn_v_bias = nn.param "encoder.8.attn.v.bias" : tensor<768xi8>
    %encoder8_v = nn.add %encoder8_v_mm, %encoder_8_attn_v_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder8_v_heads = nn.reshape %encoder8_v : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder8_v_t = nn.transpose %encoder8_v_heads perm = [0, 2, 1, 3] : tensor<1x128x12x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder8_scores = nn.batch_matmul %encoder8_q_t, %encoder8_k_t : tensor<1x12x128x64xbf16>, tensor<1x12x64x128xbf16> -> tensor<1x12x128x128xbf16>
    %encoder8_scale = nn.constant 0.125 : tensor<bf16>
    %encoder8_scaled = nn.mul %encoder8_scores, %encoder8_scale : tensor<1x12x128x128xbf16>, tensor<bf16> -> tensor<1x12x128x128xbf16>
    %encoder8_probs = nn.softmax %encoder8_scaled axis = -1 : tensor<1x12x128x128xbf16>
    %encoder8_ctx = nn.batch_matmul %encoder8_probs, %encoder8_v_t : tensor<1x12x128x128xbf16>, tensor<1x12x128x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder8_ctx_t = nn.transpose %encoder8_ctx perm = [0, 2, 1, 3] : tensor<1x12x128x64xbf16> -> tensor<1x128x12x64xbf16>
    %encoder8_ctx_flat = nn.reshape %encoder8_ctx_t : tensor<1x128x12x64xbf16> -> tensor<1x128x768xbf16>
    %encoder_8_attn_out_weight = nn.param "encoder.8.attn.out.weight" : tensor<768x768xi8>
    %encoder8_attn_mm = nn.matmul %encoder8_ctx_flat, %encoder_8_attn_out_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_8_attn_out_bias = nn.param "encoder.8.attn.out.bias" : tensor<768xi8>
    %encoder8_attn = nn.add %encoder8_attn_mm, %encoder_8_attn_out_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder8_res1 = nn.add %encoder7_ln2, %encoder8_attn : tensor<1x128x768xbf16>, tensor<1x128x768xbf16> -> tensor<1x128x768xbf16>
    %encoder_8_ln1_weight = nn.param "encoder.8.ln1.weight" : tensor<768xi8>
    %encoder_8_ln1_bias = nn.param "encoder.8.ln1.bias" : tensor<768xi8>
    %encoder8_ln1 = nn.layer_norm %encoder8_res1, %encoder_8_ln1_weight, %encoder_8_ln1_bias : tensor<1x128x768xbf16>, tensor<768xi8>, tensor<768xi8>
    %encoder_8_ffn_w1_weight = nn.param "encoder.8.ffn.w1.weight" : tensor<768x3072xi8>
    %encoder8_ffn1_mm = nn.matmul %encoder8_ln1, %encoder_8_ffn_w1_weight : tensor<1x128x768xbf16>, tensor<768x3072xi8> -> tensor<1x128x3072xbf16>
    %encoder_8_ffn_w1_bias = nn.param "encoder.8.ffn.w1.bias" : tensor<3072xi8>
    %encoder8_ffn1 = nn.add %encoder8_ffn1_mm, %encoder_8_ffn_w1_bias : tensor<1x128x3072xbf16>, tensor<3072xi8> -> tensor<1x128x3072xbf16>
    %encoder8_gelu = nn.gelu %encoder8_ffn1 : tensor<1x128x3072xbf16>
    %encoder_8_ffn_w2_weight = nn.param "encoder.8.ffn.w2.weight" : tensor<3072x768xi8>
    %encoder8_ffn2_mm = nn.matmul %encoder8_gelu, %encoder_8_ffn_w2_weight : tensor<1x128x3072xbf16>, tensor<3072x768xi8> -> tensor<1x128x768xbf16>
    %encoder_8_ffn_w2_bias = nn.param "encoder.8.ffn.w2.bias" : tensor<768xi8>
    %encoder8_ffn2 = nn.add %encoder8_ffn2_mm, %encoder_8_ffn_w2_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder8_res2 = nn.add %encoder8_ln1, %encoder8_ffn2 : tensor<1x128x768xbf16>, tensor<1x128x768xbf16> -> tensor<1x128x768xbf16>
    %encoder_8_ln2_weight = nn.param "encoder.8.ln2.weight" : tensor<768xi8>
    %encoder_8_ln2_bias = nn.param "encoder.8.ln2.bias" : tensor<768xi8>
    %encoder8_ln2 = nn.layer_norm %encoder8_res2, %encoder_8_ln2_weight, %encoder_8_ln2_bias : tensor<1x128x768xbf16>, tensor<768xi8>, tensor<768xi8>
    %encoder_9_attn_q_weight = nn.param "encoder.9.attn.q.weight" : tensor<768x768xi8>
    %encoder9_q_mm = nn.matmul %encoder8_ln2, %encoder_9_attn_q_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_9_attn_q_bias = nn.param "encoder.9.attn.q.bias" : tensor<768xi8>
    %encoder9_q = nn.add %encoder9_q_mm, %encoder_9_attn_q_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder9_q_heads = nn.reshape %encoder9_q : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder9_q_t = nn.transpose %encoder9_q_heads perm = [0, 2, 1, 3] : tensor<1x128x12x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder_9_attn_k_weight = nn.param "encoder.9.attn.k.weight" : tensor<768x768xi8>
    %encoder9_k_mm = nn.matmul %encoder8_ln2, %encoder_9_attn_k_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_9_attn_k_bias = nn.param "encoder.9.attn.k.bias" : tensor<768xi8>
    %encoder9_k = nn.add %encoder9_k_mm, %encoder_9_attn_k_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder9_k_heads = nn.reshape %encoder9_k : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder9_k_t = nn.transpose %encoder9_k_heads perm = [0, 2, 3, 1] : tensor<1x128x12x64xbf16> -> tensor<1x12x64x128xbf16>
    %encoder_9_attn_v_weight = nn.param "encoder.9.attn.v.weight" : tensor<768x768xi8>
    %encoder9_v_mm = nn.matmul %encoder8_ln2, %encoder_9_attn_v_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_9_attn_v_bias = nn.param "encoder.9.attn.v.bias" : tensor<768xi8>
    %encoder9_v = nn.add %encoder9_v_mm, %encoder_9_attn_v_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder9_v_heads = nn.reshape %encoder9_v : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder9_v_t = nn.transpose %encoder9_v_heads perm = [0, 2, 1, 3] : tensor<1x128x12x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder9_scores = nn.batch_matmul %encoder9_q_t, %encoder9_k_t : tensor<1x12x128x64xbf16>, tensor<1x12x64x128xbf16> -> tensor<1x12x128x128xbf16>
    %encoder9_scale = nn.constant 0.125 : tensor<bf16>
    %encoder9_scaled = nn.mul %encoder9_scores, %encoder9_scale : tensor<1x12x128x128xbf16>, tensor<bf16> -> tensor<1x12x128x128xbf16>
    %encoder9_probs = nn.softmax %encoder9_scaled axis = -1 : tensor<1x12x128x128xbf16>
    %encoder9_ctx = nn.batch_matmul %encoder9_probs, %encoder9_v_t : tensor<1x12x128x128xbf16>, tensor<1x12x128x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder9_ctx_t = nn.transpose %encoder9_ctx perm = [0, 2, 1, 3] : tensor<1x12x128x64xbf16> -> tensor<1x128x12x64xbf16>
    %encoder9_ctx_flat = nn.reshape %encoder9_ctx_t : tensor<1x128x12x64xbf16> -> tensor<1x128x768xbf16>
    %encoder_9_attn_out_weight = nn.param "encoder.9.attn.out.weight" : tensor<768x768xi8>
    %encoder9_attn_mm = nn.matmul %encoder9_ctx_flat, %encoder_9_attn_out_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_9_attn_out_bias = nn.param "encoder.9.attn.out.bias" : tensor<768xi8>
    %encoder9_attn = nn.add %encoder9_attn_mm, %encoder_9_attn_out_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder9_res1 = nn.add %encoder8_ln2, %encoder9_attn : tensor<1x128x768xbf16>, tensor<1x128x768xbf16> -> tensor<1x128x768xbf16>
    %encoder_9_ln1_weight = nn.param "encoder.9.ln1.weight" : tensor<768xi8>
    %encoder_9_ln1_bias = nn.param "encoder.9.ln1.bias" : tensor<768xi8>
    %encoder9_ln1 = nn.layer_norm %encoder9_res1, %encoder_9_ln1_weight, %encoder_9_ln1_bias : tensor<1x128x768xbf16>, tensor<768xi8>, tensor<768xi8>
    %encoder_9_ffn_w1_weight = nn.param "encoder.9.ffn.w1.weight" : tensor<768x3072xi8>
    %encoder9_ffn1_mm = nn.matmul %encoder9_ln1, %encoder_9_ffn_w1_weight : tensor<1x128x768xbf16>, tensor<768x3072xi8> -> tensor<1x128x3072xbf16>
    %encoder_9_ffn_w1_bias = nn.param "encoder.9.ffn.w1.bias" : tensor<3072xi8>
    %encoder9_ffn1 = nn.add %encoder9_ffn1_mm, %encoder_9_ffn_w1_bias : tensor<1x128x3072xbf16>, tensor<3072xi8> -> tensor<1x128x3072xbf16>
    %encoder9_gelu = nn.gelu %encoder9_ffn1 : tensor<1x128x3072xbf16>
    %encoder_9_ffn_w2_weight = nn.param "encoder.9.ffn.w2.weight" : tensor<3072x768xi8>
    %encoder9_ffn2_mm = nn.matmul %encoder9_gelu, %encoder_9_ffn_w2_weight : tensor<1x128x3072xbf16>, tensor<3072x768xi8> -> tensor<1x128x768xbf16>
    %encoder_9_ffn_w2_bias = nn.param "encoder.9.ffn.w2.bias" : tensor<768xi8>
    %encoder9_ffn2 = nn.add %encoder9_ffn2_mm, %encoder_9_ffn_w2_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder9_res2 = nn.add %encoder9_ln1, %encoder9_ffn2 : tensor<1x128x768xbf16>, tensor<1x128x768xbf16> -> tensor<1x128x768xbf16>
    %encoder_9_ln2_weight = nn.param "encoder.9.ln2.weight" : tensor<768xi8>
    %encoder_9_ln2_bias = nn.param "encoder.9.ln2.bias" : tensor<768xi8>
    %encoder9_ln2 = nn.layer_norm %encoder9_res2, %encoder_9_ln2_weight, %encoder_9_ln2_bias : tensor<1x128x768xbf16>, tensor<768xi8>, tensor<768xi8>
    %encoder_10_attn_q_weight = nn.param "encoder.10.attn.q.weight" : tensor<768x768xi8>
    %encoder10_q_mm = nn.matmul %encoder9_ln2, %encoder_10_attn_q_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_10_attn_q_bias = nn.param "encoder.10.attn.q.bias" : tensor<768xi8>
    %encoder10_q = nn.add %encoder10_q_mm, %encoder_10_attn_q_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder10_q_heads = nn.reshape %encoder10_q : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder10_q_t = nn.transpose %encoder10_q_heads perm = [0, 2, 1, 3] : tensor<1x128x12x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder_10_attn_k_weight = nn.param "encoder.10.attn.k.weight" : tensor<768x768xi8>
    %encoder10_k_mm = nn.matmul %encoder9_ln2, %encoder_10_attn_k_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_10_attn_k_bias = nn.param "encoder.10.attn.k.bias" : tensor<768xi8>
    %encoder10_k = nn.add %encoder10_k_mm, %encoder_10_attn_k_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder10_k_heads = nn.reshape %encoder10_k : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder10_k_t = nn.transpose %encoder10_k_heads perm = [0, 2, 3, 1] : tensor<1x128x12x64xbf16> -> tensor<1x12x64x128xbf16>
    %encoder_10_attn_v_weight = nn.param "encoder.10.attn.v.weight" : tensor<768x768xi8>
    %encoder10_v_mm = nn.matmul %encoder9_ln2, %encoder_10_attn_v_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_10_attn_v_bias = nn.param "encoder.10.attn.v.bias" : tensor<768xi8>
    %encoder10_v = nn.add %encoder10_v_mm, %encoder_10_attn_v_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder10_v_heads = nn.reshape %encoder10_v : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder10_v_t = nn.transpose %encoder10_v_heads perm = [0, 2, 1, 3] : tensor<1x128x12x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder10_scores = nn.batch_matmul %encoder10_q_t, %encoder10_k_t : tensor<1x12x128x64xbf16>, tensor<1x12x64x128xbf16> -> tensor<1x12x128x128xbf16>
    %encoder10_scale = nn.constant 0.125 : tensor<bf16>
    %encoder10_scaled = nn.mul %encoder10_scores, %encoder10_scale : tensor<1x12x128x128xbf16>, tensor<bf16> -> tensor<1x12x128x128xbf16>
    %encoder10_probs = nn.softmax %encoder10_scaled axis = -1 : tensor<1x12x128x128xbf16>
    %encoder10_ctx = nn.batch_matmul %encoder10_probs, %encoder10_v_t : tensor<1x12x128x128xbf16>, tensor<1x12x128x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder10_ctx_t = nn.transpose %encoder10_ctx perm = [0, 2, 1, 3] : tensor<1x12x128x64xbf16> -> tensor<1x128x12x64xbf16>
    %encoder10_ctx_flat = nn.reshape %encoder10_ctx_t : tensor<1x128x12x64xbf16> -> tensor<1x128x768xbf16>
    %encoder_10_attn_out_weight = nn.param "encoder.10.attn.out.weight" : tensor<768x768xi8>
    %encoder10_attn_mm = nn.matmul %encoder10_ctx_flat, %encoder_10_attn_out_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_10_attn_out_bias = nn.param "encoder.10.attn.out.bias" : tensor<768xi8>
    %encoder10_attn = nn.add %encoder10_attn_mm, %encoder_10_attn_out_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder10_res1 = nn.add %encoder9_ln2, %encoder10_attn : tensor<1x128x768xbf16>, tensor<1x128x768xbf16> -> tensor<1x128x768xbf16>
    %encoder_10_ln1_weight = nn.param "encoder.10.ln1.weight" : tensor<768xi8>
    %encoder_10_ln1_bias = nn.param "encoder.10.ln1.bias" : tensor<768xi8>
    %encoder10_ln1 = nn.layer_norm %encoder10_res1, %encoder_10_ln1_weight, %encoder_10_ln1_bias : tensor<1x128x768xbf16>, tensor<768xi8>, tensor<768xi8>
    %encoder_10_ffn_w1_weight = nn.param "encoder.10.ffn.w1.weight" : tensor<768x3072xi8>
    %encoder10_ffn1_mm = nn.matmul %encoder10_ln1, %encoder_10_ffn_w1_weight : tensor<1x128x768xbf16>, tensor<768x3072xi8> -> tensor<1x128x3072xbf16>
    %encoder_10_ffn_w1_bias = nn.param "encoder.10.ffn.w1.bias" : tensor<3072xi8>
    %encoder10_ffn1 = nn.add %encoder10_ffn1_mm, %encoder_10_ffn_w1_bias : tensor<1x128x3072xbf16>, tensor<3072xi8> -> tensor<1x128x3072xbf16>
    %encoder10_gelu = nn.gelu %encoder10_ffn1 : tensor<1x128x3072xbf16>
    %encoder_10_ffn_w2_weight = nn.param "encoder.10.ffn.w2.weight" : tensor<3072x768xi8>
    %encoder10_ffn2_mm = nn.matmul %encoder10_gelu, %encoder_10_ffn_w2_weight : tensor<1x128x3072xbf16>, tensor<3072x768xi8> -> tensor<1x128x768xbf16>
    %encoder_10_ffn_w2_bias = nn.param "encoder.10.ffn.w2.bias" : tensor<768xi8>
    %encoder10_ffn2 = nn.add %encoder10_ffn2_mm, %encoder_10_ffn_w2_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder10_res2 = nn.add %encoder10_ln1, %encoder10_ffn2 : tensor<1x128x768xbf16>, tensor<1x128x768xbf16> -> tensor<1x128x768xbf16>
    %encoder_10_ln2_weight = nn.param "encoder.10.ln2.weight" : tensor<768xi8>
    %encoder_10_ln2_bias = nn.param "encoder.10.ln2.bias" : tensor<768xi8>
    %encoder10_ln2 = nn.layer_norm %encoder10_res2, %encoder_10_ln2_weight, %encoder_10_ln2_bias : tensor<1x128x768xbf16>, tensor<768xi8>, tensor<768xi8>
    %encoder_11_attn_q_weight = nn.param "encoder.11.attn.q.weight" : tensor<768x768xi8>
    %encoder11_q_mm = nn.matmul %encoder10_ln2, %encoder_11_attn_q_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_11_attn_q_bias = nn.param "encoder.11.attn.q.bias" : tensor<768xi8>
    %encoder11_q = nn.add %encoder11_q_mm, %encoder_11_attn_q_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder11_q_heads = nn.reshape %encoder11_q : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder11_q_t = nn.transpose %encoder11_q_heads perm = [0, 2, 1, 3] : tensor<1x128x12x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder_11_attn_k_weight = nn.param "encoder.11.attn.k.weight" : tensor<768x768xi8>
    %encoder11_k_mm = nn.matmul %encoder10_ln2, %encoder_11_attn_k_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_11_attn_k_bias = nn.param "encoder.11.attn.k.bias" : tensor<768xi8>
    %encoder11_k = nn.add %encoder11_k_mm, %encoder_11_attn_k_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder11_k_heads = nn.reshape %encoder11_k : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder11_k_t = nn.transpose %encoder11_k_heads perm = [0, 2, 3, 1] : tensor<1x128x12x64xbf16> -> tensor<1x12x64x128xbf16>
    %encoder_11_attn_v_weight = nn.param "encoder.11.attn.v.weight" : tensor<768x768xi8>
    %encoder11_v_mm = nn.matmul %encoder10_ln2, %encoder_11_attn_v_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_11_attn_v_bias = nn.param "encoder.11.attn.v.bias" : tensor<768xi8>
    %encoder11_v = nn.add %encoder11_v_mm, %encoder_11_attn_v_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder11_v_heads = nn.reshape %encoder11_v : tensor<1x128x768xbf16> -> tensor<1x128x12x64xbf16>
    %encoder11_v_t = nn.transpose %encoder11_v_heads perm = [0, 2, 1, 3] : tensor<1x128x12x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder11_scores = nn.batch_matmul %encoder11_q_t, %encoder11_k_t : tensor<1x12x128x64xbf16>, tensor<1x12x64x128xbf16> -> tensor<1x12x128x128xbf16>
    %encoder11_scale = nn.constant 0.125 : tensor<bf16>
    %encoder11_scaled = nn.mul %encoder11_scores, %encoder11_scale : tensor<1x12x128x128xbf16>, tensor<bf16> -> tensor<1x12x128x128xbf16>
    %encoder11_probs = nn.softmax %encoder11_scaled axis = -1 : tensor<1x12x128x128xbf16>
    %encoder11_ctx = nn.batch_matmul %encoder11_probs, %encoder11_v_t : tensor<1x12x128x128xbf16>, tensor<1x12x128x64xbf16> -> tensor<1x12x128x64xbf16>
    %encoder11_ctx_t = nn.transpose %encoder11_ctx perm = [0, 2, 1, 3] : tensor<1x12x128x64xbf16> -> tensor<1x128x12x64xbf16>
    %encoder11_ctx_flat = nn.reshape %encoder11_ctx_t : tensor<1x128x12x64xbf16> -> tensor<1x128x768xbf16>
    %encoder_11_attn_out_weight = nn.param "encoder.11.attn.out.weight" : tensor<768x768xi8>
    %encoder11_attn_mm = nn.matmul %encoder11_ctx_flat, %encoder_11_attn_out_weight : tensor<1x128x768xbf16>, tensor<768x768xi8> -> tensor<1x128x768xbf16>
    %encoder_11_attn_out_bias = nn.param "encoder.11.attn.out.bias" : tensor<768xi8>
    %encoder11_attn = nn.add %encoder11_attn_mm, %encoder_11_attn_out_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder11_res1 = nn.add %encoder10_ln2, %encoder11_attn : tensor<1x128x768xbf16>, tensor<1x128x768xbf16> -> tensor<1x128x768xbf16>
    %encoder_11_ln1_weight = nn.param "encoder.11.ln1.weight" : tensor<768xi8>
    %encoder_11_ln1_bias = nn.param "encoder.11.ln1.bias" : tensor<768xi8>
    %encoder11_ln1 = nn.layer_norm %encoder11_res1, %encoder_11_ln1_weight, %encoder_11_ln1_bias : tensor<1x128x768xbf16>, tensor<768xi8>, tensor<768xi8>
    %encoder_11_ffn_w1_weight = nn.param "encoder.11.ffn.w1.weight" : tensor<768x3072xi8>
    %encoder11_ffn1_mm = nn.matmul %encoder11_ln1, %encoder_11_ffn_w1_weight : tensor<1x128x768xbf16>, tensor<768x3072xi8> -> tensor<1x128x3072xbf16>
    %encoder_11_ffn_w1_bias = nn.param "encoder.11.ffn.w1.bias" : tensor<3072xi8>
    %encoder11_ffn1 = nn.add %encoder11_ffn1_mm, %encoder_11_ffn_w1_bias : tensor<1x128x3072xbf16>, tensor<3072xi8> -> tensor<1x128x3072xbf16>
    %encoder11_gelu = nn.gelu %encoder11_ffn1 : tensor<1x128x3072xbf16>
    %encoder_11_ffn_w2_weight = nn.param "encoder.11.ffn.w2.weight" : tensor<3072x768xi8>
    %encoder11_ffn2_mm = nn.matmul %encoder11_gelu, %encoder_11_ffn_w2_weight : tensor<1x128x3072xbf16>, tensor<3072x768xi8> -> tensor<1x128x768xbf16>
    %encoder_11_ffn_w2_bias = nn.param "encoder.11.ffn.w2.bias" : tensor<768xi8>
    %encoder11_ffn2 = nn.add %encoder11_ffn2_mm, %encoder_11_ffn_w2_bias : tensor<1x128x768xbf16>, tensor<768xi8> -> tensor<1x128x768xbf16>
    %encoder11_res2 = nn.add %encoder11_ln1, %encoder11_ffn2 : tensor<1x128x768xbf16>, tensor<1x128x768xbf16> -> tensor<1x128x768xbf16>
    %encoder_11_ln2_weight = nn.param "encoder.11.ln2.weight" : tensor<768xi8>
    %encoder_11_ln2_bias = nn.param "encoder.11.ln2.bias" : tensor<768xi8>
    %encoder11_ln2 = nn.layer_norm %encoder11_res2, %encoder_11_ln2_weight, %encoder_11_ln2_bias : tensor<1x128x768xbf16>, tensor<768xi8>, tensor<768xi8>
    func.return %encoder11_ln2 : tensor<1x128x768xbf16>
  }
}
