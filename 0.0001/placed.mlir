builtin.module attributes {mcm.target = "tpu-ring8"} {
  func.func @f(%x: tensor<4x8xbf16>) -> tensor<4x8xbf16> {
    %w = nn.param "w" {mcm.chip = #mcm.chip<0>} : tensor<8x8xi8>
    %y = nn.matmul %x, %w {mcm.cost = {node = 0 : i64, flops = 512 : i64, bytes = 192 : i64, weight_bytes = 64 : i64, working_set = 128 : i64, compute_s = 6.400000e-11 : f64, time_s = 4.800000e-10 : f64}, mcm.chip = #mcm.chip<0>} : tensor<4x8xbf16>, tensor<8x8xi8> -> tensor<4x8xbf16>
    %s = nn.softmax %y axis = -1 {mcm.cost = {node = 1 : i64, flops = 160 : i64, bytes = 128 : i64, weight_bytes = 0 : i64, working_set = 128 : i64, compute_s = 1.600000e-10 : f64, time_s = 3.200000e-10 : f64}, mcm.chip = #mcm.chip<0>} : tensor<4x8xbf16>
    %z = nn.add %s, %x {mcm.cost = {node = 2 : i64, flops = 32 : i64, bytes = 192 : i64, weight_bytes = 0 : i64, working_set = 192 : i64, compute_s = 3.200000e-11 : f64, time_s = 4.800000e-10 : f64}, mcm.chip = #mcm.chip<0>} : tensor<4x8xbf16>, tensor<4x8xbf16> -> tensor<4x8xbf16>
    func.return %z : tensor<4x8xbf16>
  }
}
