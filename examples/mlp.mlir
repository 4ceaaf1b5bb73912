builtin.module {
  func.func @mlp(%x: tensor<1x784xbf16>) -> tensor<1x10xbf16> {
    %fc0_weight = nn.param "fc0.weight" : tensor<784x1024xi8>
    %fc0_mm = nn.matmul %x, %fc0_weight : tensor<1x784xbf16>, tensor<784x1024xi8> -> tensor<1x1024xbf16>
    %fc0_bias = nn.param "fc0.bias" : tensor<1024xi8>
    %fc0 = nn.add %fc0_mm, %fc0_bias : tensor<1x1024xbf16>, tensor<1024xi8> -> tensor<1x1024xbf16>
    %relu0 = nn.relu %fc0 : tensor<1x1024xbf16>
    %fc1_weight = nn.param "fc1.weight" : tensor<1024x1024xi8>
    %fc1_mm = nn.matmul %relu0, %fc1_weight : tensor<1x1024xbf16>, tensor<1024x1024xi8> -> tensor<1x1024xbf16>
    %fc1_bias = nn.param "fc1.bias" : tensor<1024xi8>
    %fc1 = nn.add %fc1_mm, %fc1_bias : tensor<1x1024xbf16>, tensor<1024xi8> -> tensor<1x1024xbf16>
    %relu1 = nn.relu %fc1 : tensor<1x1024xbf16>
    %fc2_weight = nn.param "fc2.weight" : tensor<1024x512xi8>
    %fc2_mm = nn.matmul %relu1, %fc2_weight : tensor<1x1024xbf16>, tensor<1024x512xi8> -> tensor<1x512xbf16>
    %fc2_bias = nn.param "fc2.bias" : tensor<512xi8>
    %fc2 = nn.add %fc2_mm, %fc2_bias : tensor<1x512xbf16>, tensor<512xi8> -> tensor<1x512xbf16>
    %relu2 = nn.relu %fc2 : tensor<1x512xbf16>
    %fc3_weight = nn.param "fc3.weight" : tensor<512x10xi8>
    %fc3_mm = nn.matmul %relu2, %fc3_weight : tensor<1x512xbf16>, tensor<512x10xi8> -> tensor<1x10xbf16>
    %fc3_bias = nn.param "fc3.bias" : tensor<10xi8>
    %fc3 = nn.add %fc3_mm, %fc3_bias : tensor<1x10xbf16>, tensor<10xi8> -> tensor<1x10xbf16>
    %probs = nn.softmax %fc3 axis = -1 : tensor<1x10xbf16>
    func.return %probs : tensor<1x10xbf16>
  }
}
