/* RobustBench's CIFAR-10 and CIFAR-100 Linf and L2 models and its ImageNet
 * Linf models as clasp sees them, written from RobustBench's model_zoo
 * definitions (cifar10.py, cifar100.py, imagenet.py and the architectures
 * they build). What decides a row:
 *
 *   WideResNet(depth, widen_factor)  -> wrn-D-W. With sub_block1=True the
 *       model also holds sub_block1 (a copy of block1 that forward never
 *       runs), so its checkpoint carries sub_block1.* tensors to skip.
 *   DMWideResNet, DMPreActResNet     -> dm-wrn-D-W, dm-preact-resnet18;
 *       Swish and nn.SiLU are the same function (-swish). Their mean/std
 *       are non-persistent buffers, so checkpoints do not carry them and
 *       the values below (CIFAR-10's unless passed) are the only record.
 *   PreActResNet(PreActBlock), bn_before_fc=False -> preact-resnet18-nobn;
 *       this block adds its input x, not relu(bn1(x)), through the 1x1
 *       shortcut. PreActBlockV2 or out_shortcut=True with bn_before_fc=True
 *       -> preact-resnet18 (shortcut from relu(bn1(x)), final bn).
 *   ResNet(BasicBlock, [2,2,2,2])    -> resnet18; ResNet(Bottleneck,
 *       [3,4,6,3]) -> resnet50.
 *   ImageNet: torchvision's resnet18/resnet50/wide_resnet50_2 inside
 *       normalize_model(model, mu, sigma) -> tv-resnet18/50, tv-wide-
 *       resnet50-2 with that normalisation (the wrapper's normalize.mean and
 *       normalize.std, when a file carries them, must equal it); the
 *       preprocessing is the row's (Res256Crop224, Crop288, ...).
 *   A subclass that only adds (x - mu) / sigma -> the same arch with that
 *       normalisation; mu and sigma are persistent buffers, which some
 *       published files lack (RobustBench loads those leniently). */
#include <stdio.h>
#include <string.h>

#include "clasp/zoo.h"

/* clang-format off */
#define C10_LINF(n) n, "cifar10", "Linf", 10
#define C10_L2(n) n, "cifar10", "L2", 10
#define C100_LINF(n) n, "cifar100", "Linf", 100
#define IN_LINF(n) n, "imagenet", "Linf", 1000

#define NO_NORM 0, {0, 0, 0}, {0, 0, 0}
/* dm_wide_resnet.py's CIFAR10_MEAN/STD; also several subclasses' mu/sigma. */
#define C10_NORM 1, {0.4914f, 0.4822f, 0.4465f}, {0.2471f, 0.2435f, 0.2616f}
/* dm_wide_resnet.py's CIFAR100_MEAN/STD. */
#define C100_NORM 1, {0.5071f, 0.4865f, 0.4409f}, {0.2673f, 0.2564f, 0.2762f}
/* cifar100.py's Chen2020EfficientNet. */
#define C100_CHEN_NORM 1, {0.5071f, 0.4867f, 0.4408f}, {0.2675f, 0.2565f, 0.2761f}
/* cifar100.py's Wu2020AdversarialNet and Rice2020OverfittingNet. */
#define C100_LONG_NORM 1, {0.5070751592371323f, 0.48654887331495095f, 0.4409178433670343f}, \
                          {0.2673342858792401f, 0.2564384629170883f, 0.27615047132568404f}
/* Augustin2020AdversarialWideNet. */
#define AUGUSTIN_NORM 1, {0.4913997551666284f, 0.48215855929893703f, 0.4465309133731618f}, \
                         {0.24703225141799082f, 0.24348516474564f, 0.26158783926049628f}
/* Rony2019DecouplingNet. */
#define RONY_NORM 1, {0.491f, 0.482f, 0.447f}, {0.247f, 0.243f, 0.262f}
/* Engstrom2019RobustnessNet's mu/sigma. */
#define ENGSTROM_NORM 1, {0.4914f, 0.4822f, 0.4465f}, {0.2023f, 0.1994f, 0.2010f}
/* imagenet.py's mu and sigma, ImageNet's usual statistics. */
#define IN_NORM 1, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}
/* Hendrycks2019UsingNet computes 2x - 1 = (x - 0.5) / 0.5. */
#define HALF_NORM 1, {0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f}

#define SB1 "sub_block1."
#define MU "mu,sigma"

#define YES(id, arch, norm, ignore) {id, arch, NULL, norm, NULL, ignore}
#define NO(id, why) {id, NULL, why, NO_NORM, NULL, NULL}
/* An ImageNet row: its preprocessing too. */
#define YESP(id, arch, norm, prep) {id, arch, NULL, norm, prep, NULL}
#define NOP(id, why, prep) {id, NULL, why, NO_NORM, prep, NULL}

#define CONVSTEM "ViT or ConvNeXt with a convolutional stem (timm)"
#define CONVNEXT "ConvNeXt (timm)"
#define SWIN "Swin transformer (timm)"
#define VIT "ViT (timm)"
#define XCIT "XCiT vision transformer (timm)"
#define MEANSPARSE "MeanSparse (sparsified activations)"
#define COMPOSITE "composite of two models mixed by a policy network"
#define MIXEDNUTS "nonlinear mix of two models (MixedNUTS)"
#define ROBUSTWRN "RobustWideResNet (searched per-stage widths and depths)"

static const clasp_zoo_entry zoo[] = {
    /* CIFAR-10, Linf */
    YES(C10_LINF("Andriushchenko2020Understanding"), "preact-resnet18-nobn", NO_NORM, NULL),
    YES(C10_LINF("Carmon2019Unlabeled"), "wrn-28-10", NO_NORM, SB1),
    YES(C10_LINF("Sehwag2020Hydra"), "wrn-28-10", NO_NORM, SB1),
    YES(C10_LINF("Wang2020Improving"), "wrn-28-10", NO_NORM, SB1),
    YES(C10_LINF("Hendrycks2019Using"), "wrn-28-10", HALF_NORM, NULL),
    YES(C10_LINF("Rice2020Overfitting"), "wrn-34-20", C10_NORM, MU),
    YES(C10_LINF("Zhang2019Theoretically"), "wrn-34-10", NO_NORM, SB1),
    YES(C10_LINF("Engstrom2019Robustness"), "resnet50", ENGSTROM_NORM, MU),
    NO(C10_LINF("Chen2020Adversarial"), "ensemble of three ResNet-50s"),
    YES(C10_LINF("Huang2020Self"), "wrn-34-10", NO_NORM, SB1),
    NO(C10_LINF("Pang2020Boosting"), "BoostingWideResNet (normalised last layer)"),
    YES(C10_LINF("Wong2020Fast"), "preact-resnet18-nobn", C10_NORM, MU),
    NO(C10_LINF("Ding2020MMA"), "per-image standardisation of the input (WRN-28-4)"),
    YES(C10_LINF("Zhang2019You"), "wrn-34-10", NO_NORM, SB1),
    YES(C10_LINF("Zhang2020Attacks"), "wrn-34-10", NO_NORM, SB1),
    YES(C10_LINF("Wu2020Adversarial_extra"), "wrn-28-10", NO_NORM, SB1),
    YES(C10_LINF("Wu2020Adversarial"), "wrn-34-10", NO_NORM, NULL),
    YES(C10_LINF("Gowal2020Uncovering_70_16"), "dm-wrn-70-16-swish", C10_NORM, NULL),
    YES(C10_LINF("Gowal2020Uncovering_70_16_extra"), "dm-wrn-70-16-swish", C10_NORM, NULL),
    YES(C10_LINF("Gowal2020Uncovering_34_20"), "dm-wrn-34-20-swish", C10_NORM, NULL),
    YES(C10_LINF("Gowal2020Uncovering_28_10_extra"), "dm-wrn-28-10-swish", C10_NORM, NULL),
    YES(C10_LINF("Sehwag2021Proxy"), "wrn-34-10", NO_NORM, NULL),
    YES(C10_LINF("Sehwag2021Proxy_R18"), "resnet18", NO_NORM, NULL),
    NO(C10_LINF("Sehwag2021Proxy_ResNest152"), "ResNeSt-152"),
    YES(C10_LINF("Sitawarin2020Improving"), "wrn-34-10", NO_NORM, SB1),
    YES(C10_LINF("Chen2020Efficient"), "wrn-34-10", C10_NORM, SB1 "," MU),
    YES(C10_LINF("Cui2020Learnable_34_20"), "wrn-34-20", NO_NORM, SB1),
    YES(C10_LINF("Cui2020Learnable_34_10"), "wrn-34-10", NO_NORM, SB1),
    YES(C10_LINF("Zhang2020Geometry"), "wrn-28-10", NO_NORM, SB1),
    YES(C10_LINF("Rebuffi2021Fixing_28_10_cutmix_ddpm"), "dm-wrn-28-10-swish", C10_NORM, NULL),
    YES(C10_LINF("Rebuffi2021Fixing_106_16_cutmix_ddpm"), "dm-wrn-106-16-swish", C10_NORM, NULL),
    YES(C10_LINF("Rebuffi2021Fixing_70_16_cutmix_ddpm"), "dm-wrn-70-16-swish", C10_NORM, NULL),
    YES(C10_LINF("Rebuffi2021Fixing_70_16_cutmix_extra"), "dm-wrn-70-16-swish", C10_NORM, NULL),
    YES(C10_LINF("Sridhar2021Robust"), "wrn-28-10", NO_NORM, SB1),
    YES(C10_LINF("Sridhar2021Robust_34_15"), "wrn-34-15", NO_NORM, SB1),
    YES(C10_LINF("Rebuffi2021Fixing_R18_ddpm"), "dm-preact-resnet18-swish", C10_NORM, NULL),
    YES(C10_LINF("Rade2021Helper_R18_extra"), "dm-preact-resnet18-swish", C10_NORM, NULL),
    YES(C10_LINF("Rade2021Helper_R18_ddpm"), "dm-preact-resnet18-swish", C10_NORM, NULL),
    YES(C10_LINF("Rade2021Helper_extra"), "dm-wrn-34-10-swish", C10_NORM, NULL),
    YES(C10_LINF("Rade2021Helper_ddpm"), "dm-wrn-28-10-swish", C10_NORM, NULL),
    NO(C10_LINF("Huang2021Exploring"), ROBUSTWRN),
    NO(C10_LINF("Huang2021Exploring_ema"), ROBUSTWRN),
    YES(C10_LINF("Addepalli2021Towards_RN18"), "resnet18", NO_NORM, NULL),
    YES(C10_LINF("Addepalli2021Towards_WRN34"), "wrn-34-10", NO_NORM, SB1),
    YES(C10_LINF("Gowal2021Improving_70_16_ddpm_100m"), "dm-wrn-70-16-swish", C10_NORM, NULL),
    NO(C10_LINF("Dai2021Parameterizing"), "WRN-28-10 with parametric shifted SiLU"),
    YES(C10_LINF("Gowal2021Improving_28_10_ddpm_100m"), "dm-wrn-28-10-swish", C10_NORM, NULL),
    YES(C10_LINF("Gowal2021Improving_R18_ddpm_100m"), "dm-preact-resnet18-swish", C10_NORM, NULL),
    YES(C10_LINF("Chen2021LTD_WRN34_10"), "wrn-34-10", NO_NORM, NULL),
    YES(C10_LINF("Chen2021LTD_WRN34_20"), "wrn-34-20", NO_NORM, NULL),
    YES(C10_LINF("Standard"), "wrn-28-10", NO_NORM, NULL),
    NO(C10_LINF("Kang2021Stable"), "neural ODE (SODEF) layers on a WideResNet"),
    YES(C10_LINF("Jia2022LAS-AT_34_10"), "wrn-34-10", NO_NORM, NULL),
    YES(C10_LINF("Jia2022LAS-AT_70_16"), "wrn-70-16", NO_NORM, NULL),
    YES(C10_LINF("Pang2022Robustness_WRN28_10"), "dm-wrn-28-10-swish", C10_NORM, NULL),
    YES(C10_LINF("Pang2022Robustness_WRN70_16"), "dm-wrn-70-16-swish", C10_NORM, NULL),
    YES(C10_LINF("Addepalli2022Efficient_RN18"), "resnet18", NO_NORM, NULL),
    YES(C10_LINF("Addepalli2022Efficient_WRN_34_10"), "wrn-34-10", NO_NORM, NULL),
    NO(C10_LINF("Debenedetti2022Light_XCiT-S12"), XCIT),
    NO(C10_LINF("Debenedetti2022Light_XCiT-M12"), XCIT),
    NO(C10_LINF("Debenedetti2022Light_XCiT-L12"), XCIT),
    NO(C10_LINF("Huang2022Revisiting_WRN-A4"), "robust_resnet WRN-A4 (searched block design)"),
    YES(C10_LINF("Wang2023Better_WRN-28-10"), "dm-wrn-28-10-swish", C10_NORM, NULL),
    YES(C10_LINF("Wang2023Better_WRN-70-16"), "dm-wrn-70-16-swish", C10_NORM, NULL),
    YES(C10_LINF("Xu2023Exploring_WRN-28-10"), "dm-wrn-28-10-swish", C10_NORM, NULL),
    YES(C10_LINF("Cui2023Decoupled_WRN-28-10"), "dm-wrn-28-10-swish", C10_NORM, NULL),
    YES(C10_LINF("Cui2023Decoupled_WRN-34-10"), "wrn-34-10", NO_NORM, NULL),
    NO(C10_LINF("Bai2023Improving_edm"), COMPOSITE),
    NO(C10_LINF("Peng2023Robust"), "RaWideResNet"),
    NO(C10_LINF("Bai2024MixedNUTS"), MIXEDNUTS),
    YES(C10_LINF("Chen2024Data_WRN_34_10"), "wrn-34-10", NO_NORM, NULL),
    YES(C10_LINF("Chen2024Data_WRN_34_20"), "wrn-34-20", NO_NORM, NULL),
    NO(C10_LINF("Amini2024MeanSparse_Ra_WRN_70_16"), MEANSPARSE " on RaWideResNet"),
    NO(C10_LINF("Amini2024MeanSparse_S-WRN-94-16"), MEANSPARSE " on WRN-94-16"),
    YES(C10_LINF("Bartoldson2024Adversarial_WRN-94-16"), "dm-wrn-94-16-swish", C10_NORM, NULL),
    YES(C10_LINF("Bartoldson2024Adversarial_WRN-82-8"), "dm-wrn-82-8-swish", C10_NORM, NULL),

    /* CIFAR-10, L2 */
    YES(C10_L2("Augustin2020Adversarial"), "resnet50", AUGUSTIN_NORM, MU),
    YES(C10_L2("Engstrom2019Robustness"), "resnet50", ENGSTROM_NORM, MU),
    YES(C10_L2("Rice2020Overfitting"), "preact-resnet18", C10_NORM, MU),
    YES(C10_L2("Rony2019Decoupling"), "wrn-28-10", RONY_NORM, MU),
    YES(C10_L2("Standard"), "wrn-28-10", NO_NORM, NULL),
    NO(C10_L2("Ding2020MMA"), "per-image standardisation of the input (WRN-28-4)"),
    YES(C10_L2("Wu2020Adversarial"), "wrn-34-10", NO_NORM, NULL),
    YES(C10_L2("Gowal2020Uncovering"), "dm-wrn-70-16-swish", C10_NORM, NULL),
    YES(C10_L2("Gowal2020Uncovering_extra"), "dm-wrn-70-16-swish", C10_NORM, NULL),
    YES(C10_L2("Sehwag2021Proxy"), "wrn-34-10", NO_NORM, NULL),
    YES(C10_L2("Sehwag2021Proxy_R18"), "resnet18", NO_NORM, NULL),
    YES(C10_L2("Rebuffi2021Fixing_70_16_cutmix_ddpm"), "dm-wrn-70-16-swish", C10_NORM, NULL),
    YES(C10_L2("Rebuffi2021Fixing_28_10_cutmix_ddpm"), "dm-wrn-28-10-swish", C10_NORM, NULL),
    YES(C10_L2("Rebuffi2021Fixing_70_16_cutmix_extra"), "dm-wrn-70-16-swish", C10_NORM, NULL),
    YES(C10_L2("Augustin2020Adversarial_34_10"), "wrn-34-10", AUGUSTIN_NORM, MU),
    YES(C10_L2("Augustin2020Adversarial_34_10_extra"), "wrn-34-10", AUGUSTIN_NORM, MU),
    YES(C10_L2("Rebuffi2021Fixing_R18_cutmix_ddpm"), "dm-preact-resnet18-swish", C10_NORM, NULL),
    YES(C10_L2("Rade2021Helper_R18_ddpm"), "dm-preact-resnet18-swish", C10_NORM, NULL),
    YES(C10_L2("Wang2023Better_WRN-28-10"), "dm-wrn-28-10-swish", C10_NORM, NULL),
    YES(C10_L2("Wang2023Better_WRN-70-16"), "dm-wrn-70-16-swish", C10_NORM, NULL),
    NO(C10_L2("Amini2024MeanSparse_S-WRN-70-16"), MEANSPARSE " on WRN-70-16"),

    /* CIFAR-100, Linf (RobustBench has no CIFAR-100 L2 leaderboard) */
    YES(C100_LINF("Gowal2020Uncovering"), "dm-wrn-70-16-swish", C100_NORM, NULL),
    YES(C100_LINF("Gowal2020Uncovering_extra"), "dm-wrn-70-16-swish", C100_NORM, NULL),
    YES(C100_LINF("Cui2020Learnable_34_20_LBGAT6"), "wrn-34-20", NO_NORM, SB1),
    YES(C100_LINF("Cui2020Learnable_34_10_LBGAT0"), "wrn-34-10", NO_NORM, SB1),
    YES(C100_LINF("Cui2020Learnable_34_10_LBGAT6"), "wrn-34-10", NO_NORM, SB1),
    YES(C100_LINF("Chen2020Efficient"), "wrn-34-10", C100_CHEN_NORM, SB1 "," MU),
    YES(C100_LINF("Wu2020Adversarial"), "wrn-34-10", C100_LONG_NORM, MU),
    YES(C100_LINF("Sehwag2021Proxy"), "wrn-34-10", NO_NORM, NULL),
    YES(C100_LINF("Sitawarin2020Improving"), "wrn-34-10", NO_NORM, SB1),
    YES(C100_LINF("Hendrycks2019Using"), "wrn-28-10", HALF_NORM, NULL),
    YES(C100_LINF("Rice2020Overfitting"), "preact-resnet18", C100_LONG_NORM, MU),
    YES(C100_LINF("Rebuffi2021Fixing_70_16_cutmix_ddpm"), "dm-wrn-70-16-swish", C100_NORM, NULL),
    YES(C100_LINF("Rebuffi2021Fixing_28_10_cutmix_ddpm"), "dm-wrn-28-10-swish", C100_NORM, NULL),
    YES(C100_LINF("Rebuffi2021Fixing_R18_ddpm"), "dm-preact-resnet18-swish", C100_NORM, NULL),
    YES(C100_LINF("Rade2021Helper_R18_ddpm"), "dm-preact-resnet18-swish", C100_NORM, NULL),
    YES(C100_LINF("Addepalli2021Towards_PARN18"), "preact-resnet18", NO_NORM, NULL),
    YES(C100_LINF("Addepalli2021Towards_WRN34"), "wrn-34-10", NO_NORM, SB1),
    YES(C100_LINF("Chen2021LTD_WRN34_10"), "wrn-34-10", NO_NORM, SB1),
    YES(C100_LINF("Pang2022Robustness_WRN28_10"), "dm-wrn-28-10-swish", C100_NORM, NULL),
    YES(C100_LINF("Pang2022Robustness_WRN70_16"), "dm-wrn-70-16-swish", C100_NORM, NULL),
    YES(C100_LINF("Jia2022LAS-AT_34_10"), "wrn-34-10", NO_NORM, SB1),
    YES(C100_LINF("Jia2022LAS-AT_34_20"), "wrn-34-20", NO_NORM, NULL),
    YES(C100_LINF("Addepalli2022Efficient_RN18"), "resnet18", NO_NORM, NULL),
    YES(C100_LINF("Addepalli2022Efficient_WRN_34_10"), "wrn-34-10", NO_NORM, NULL),
    NO(C100_LINF("Debenedetti2022Light_XCiT-S12"), XCIT),
    NO(C100_LINF("Debenedetti2022Light_XCiT-M12"), XCIT),
    NO(C100_LINF("Debenedetti2022Light_XCiT-L12"), XCIT),
    YES(C100_LINF("Cui2020Learnable_34_10_LBGAT9_eps_8_255"), "wrn-34-10", NO_NORM, NULL),
    YES(C100_LINF("Wang2023Better_WRN-28-10"), "dm-wrn-28-10-swish", C100_NORM, NULL),
    YES(C100_LINF("Wang2023Better_WRN-70-16"), "dm-wrn-70-16-swish", C100_NORM, NULL),
    NO(C100_LINF("Bai2023Improving_edm"), COMPOSITE),
    NO(C100_LINF("Bai2023Improving_trades"), COMPOSITE),
    YES(C100_LINF("Cui2023Decoupled_WRN-28-10"), "dm-wrn-28-10-swish", C100_NORM, NULL),
    YES(C100_LINF("Cui2023Decoupled_WRN-34-10"), "wrn-34-10", NO_NORM, NULL),
    YES(C100_LINF("Cui2023Decoupled_WRN-34-10_autoaug"), "wrn-34-10", NO_NORM, NULL),
    NO(C100_LINF("Bai2024MixedNUTS"), MIXEDNUTS),
    YES(C100_LINF("Chen2024Data_WRN_34_10"), "wrn-34-10", NO_NORM, NULL),
    NO(C100_LINF("Amini2024MeanSparse_S-WRN-70-16"), MEANSPARSE " on WRN-70-16"),

    /* ImageNet, Linf */
    YESP(IN_LINF("Wong2020Fast"), "tv-resnet50", IN_NORM, "Crop288"),
    YESP(IN_LINF("Engstrom2019Robustness"), "tv-resnet50", IN_NORM, "Res256Crop224"),
    YESP(IN_LINF("Salman2020Do_R50"), "tv-resnet50", IN_NORM, "Res256Crop224"),
    YESP(IN_LINF("Salman2020Do_R18"), "tv-resnet18", IN_NORM, "Res256Crop224"),
    YESP(IN_LINF("Salman2020Do_50_2"), "tv-wide-resnet50-2", IN_NORM, "Res256Crop224"),
    /* torchvision's own pretrained weights. */
    YESP(IN_LINF("Standard_R50"), "tv-resnet50", IN_NORM, "Res256Crop224"),
    NOP(IN_LINF("Debenedetti2022Light_XCiT-S12"), XCIT, NULL),
    NOP(IN_LINF("Debenedetti2022Light_XCiT-M12"), XCIT, NULL),
    NOP(IN_LINF("Debenedetti2022Light_XCiT-L12"), XCIT, NULL),
    NOP(IN_LINF("Singh2023Revisiting_ViT-S-ConvStem"), CONVSTEM, "BicubicRes256Crop224"),
    NOP(IN_LINF("Singh2023Revisiting_ViT-B-ConvStem"), CONVSTEM, "BicubicRes256Crop224"),
    NOP(IN_LINF("Singh2023Revisiting_ConvNeXt-T-ConvStem"), CONVSTEM, "BicubicRes256Crop224"),
    NOP(IN_LINF("Singh2023Revisiting_ConvNeXt-S-ConvStem"), CONVSTEM, "BicubicRes256Crop224"),
    NOP(IN_LINF("Singh2023Revisiting_ConvNeXt-B-ConvStem"), CONVSTEM, "BicubicRes256Crop224"),
    NOP(IN_LINF("Singh2023Revisiting_ConvNeXt-L-ConvStem"), CONVSTEM, "BicubicRes256Crop224"),
    NOP(IN_LINF("Liu2023Comprehensive_ConvNeXt-B"), CONVNEXT, "BicubicRes256Crop224"),
    NOP(IN_LINF("Liu2023Comprehensive_ConvNeXt-L"), CONVNEXT, "BicubicRes256Crop224"),
    NOP(IN_LINF("Liu2023Comprehensive_Swin-B"), SWIN, "BicubicRes256Crop224"),
    NOP(IN_LINF("Liu2023Comprehensive_Swin-L"), SWIN, "BicubicRes256Crop224"),
    NOP(IN_LINF("Peng2023Robust"), "RaWideResNet-101-2", "Res256Crop224"),
    NOP(IN_LINF("Bai2024MixedNUTS"), MIXEDNUTS, "BicubicRes256Crop224"),
    /* resnet50(width_per_group=128), not wrapped: it takes [0, 1] pixels. */
    YESP(IN_LINF("Chen2024Data_WRN_50_2"), "tv-wide-resnet50-2", NO_NORM, "Res256Crop224"),
    NOP(IN_LINF("Mo2022When_Swin-B"), SWIN, "Res224"),
    NOP(IN_LINF("Mo2022When_ViT-B"), VIT, "Res224"),
    NOP(IN_LINF("Amini2024MeanSparse_ConvNeXt-L"), MEANSPARSE " on ConvNeXt-L", "BicubicRes256Crop224"),
    NOP(IN_LINF("Amini2024MeanSparse_Swin-L"), MEANSPARSE " on Swin-L", "BicubicRes256Crop224"),
    NOP(IN_LINF("RodriguezMunoz2024Characterizing_Swin-B"), SWIN, "BicubicRes256Crop224"),
    NOP(IN_LINF("RodriguezMunoz2024Characterizing_Swin-L"), SWIN, "BicubicRes256Crop224"),
    NOP(IN_LINF("Xu2024MIMIR_Swin-B"), SWIN, "BicubicRes256Crop224"),
    NOP(IN_LINF("Xu2024MIMIR_Swin-L"), SWIN, "BicubicRes256Crop224"),
};
/* clang-format on */

enum { ZOO_N = sizeof zoo / sizeof zoo[0] };

size_t clasp_zoo_count(void)
{
    return ZOO_N;
}

const clasp_zoo_entry *clasp_zoo_get(size_t i)
{
    return i < ZOO_N ? &zoo[i] : NULL;
}

/* An image folder (`imagefolder`) holds ImageNet-style images: the
 * ImageNet rows are its rows. */
static int row_matches(const clasp_zoo_entry *e, const char *dataset, const char *threat)
{
    if (dataset && !strcmp(dataset, "imagefolder")) dataset = "imagenet";
    return (!dataset || !strcmp(e->dataset, dataset)) && (!threat || !strcmp(e->threat, threat));
}

/* Edit distance, ignoring case, between a and b; each is read up to 63
 * characters, enough to tell the zoo's names apart. */
static int distance(const char *a, const char *b)
{
    enum { MAX = 63 };
    size_t na = strlen(a), nb = strlen(b);
    if (na > MAX) na = MAX;
    if (nb > MAX) nb = MAX;
    int row[MAX + 1];
    for (size_t j = 0; j <= nb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= na; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= nb; j++) {
            int ca = a[i - 1] | 0x20, cb = b[j - 1] | 0x20; /* ASCII letters */
            int best = diag + (ca != cb);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diag = row[j];
            row[j] = best;
        }
    }
    return row[nb];
}

/* Writes "cifar10 Linf and cifar10 L2": where the rows named `name` that
 * match dataset and threat (NULL: any) are. */
static void list_pairs(char *buf, size_t size, const char *name, const char *dataset,
                       const char *threat)
{
    size_t len = strlen(buf);
    int first = 1;
    for (size_t i = 0; i < ZOO_N && len < size; i++) {
        if (strcmp(zoo[i].name, name) || !row_matches(&zoo[i], dataset, threat)) continue;
        int k = snprintf(buf + len, size - len, "%s%s %s", first ? "" : " and ", zoo[i].dataset,
                         zoo[i].threat);
        if (k > 0) len += (size_t)k;
        first = 0;
    }
}

/* The error for a name no row has: the three closest names, by edit
 * distance, each once. */
static clasp_status unknown_name(const char *name)
{
    const char *best[3] = {NULL, NULL, NULL};
    int dist[3] = {0, 0, 0};
    for (size_t i = 0; i < ZOO_N; i++) {
        const char *n = zoo[i].name;
        int seen = 0;
        for (int k = 0; k < 3; k++) seen |= best[k] && !strcmp(best[k], n);
        if (seen) continue;
        int d = distance(name, n);
        for (int k = 0; k < 3; k++) {
            if (best[k] && d >= dist[k]) continue;
            for (int m = 2; m > k; m--) best[m] = best[m - 1], dist[m] = dist[m - 1];
            best[k] = n, dist[k] = d;
            break;
        }
    }
    return clasp_error(CLASP_ERR_NOT_FOUND,
                       "no RobustBench model named '%s' (see clasp zoo); closest: %s, %s, %s", name,
                       best[0], best[1], best[2]);
}

clasp_status clasp_zoo_find(const char *name, const char *dataset, const char *threat,
                            const clasp_zoo_entry **out)
{
    if (!out) return clasp_error(CLASP_ERR_INVALID, "clasp_zoo_find: out is NULL");
    *out = NULL;
    if (!name || !*name) return clasp_error(CLASP_ERR_INVALID, "clasp_zoo_find: no model name");
    size_t named = 0, found = 0;
    const clasp_zoo_entry *hit = NULL;
    int same_dataset = 1, same_threat = 1;
    for (size_t i = 0; i < ZOO_N; i++) {
        if (strcmp(zoo[i].name, name)) continue;
        named++;
        if (!row_matches(&zoo[i], dataset, threat)) continue;
        if (hit) {
            same_dataset &= !strcmp(hit->dataset, zoo[i].dataset);
            same_threat &= !strcmp(hit->threat, zoo[i].threat);
        } else hit = &zoo[i];
        found++;
    }
    if (!named) return unknown_name(name);
    char pairs[512] = "";
    if (!found) {
        list_pairs(pairs, sizeof pairs, name, NULL, NULL);
        return clasp_error(CLASP_ERR_NOT_FOUND, "%s is not in the zoo for %s%s%s; it exists for %s",
                           name, dataset ? dataset : "", dataset && threat ? " " : "",
                           threat ? threat : "", pairs);
    }
    if (found > 1) {
        list_pairs(pairs, sizeof pairs, name, dataset, threat);
        const char *give = same_dataset  ? "--threat"
                           : same_threat ? "--dataset"
                                         : "--dataset, --threat or both";
        return clasp_error(CLASP_ERR_CONFIG, "%s exists for %s: give %s", name, pairs, give);
    }
    *out = hit;
    return CLASP_OK;
}
