builtin.module {
  func.func @bert_1layer(%x: tensor<1x128x768xbf16>) -> tensor<1x128x768xbf16> {
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
    func.return %encoder0_ln2 : tensor<1x128x768xbf16>
  }
}
